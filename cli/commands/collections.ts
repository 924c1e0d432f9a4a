import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../agent/duration.js';
import {
  type Collection,
  CollectionServiceClient,
} from '../../proto/gen/runkeys/v1/collections.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson, printTable } from '../context.js';
import { UsageError } from '../errors.js';
import { allPages } from '../pages.js';

const COLUMNS = ['NAME', 'DESCRIPTION', 'MAX OFFLINE', 'CREATED'];

/** A table row; a max offline of 0 (the agent's own --max-offline) shows as "-". */
const row = (c: Collection) => [
  c.name,
  c.description,
  c.maxOfflineSeconds === 0 ? '' : formatDuration(c.maxOfflineSeconds * 1000),
  isoTime(c.createTime),
];

function show(io: CliIo, c: Collection, json: boolean): void {
  if (json) printJson(io, CollectionJson(c));
  else printTable(io, COLUMNS, [row(c)]);
}

const CollectionJson = (c: Collection) => ({
  name: c.name,
  description: c.description,
  maxOfflineSeconds: c.maxOfflineSeconds,
  createTime: isoTime(c.createTime),
  updateTime: isoTime(c.updateTime),
  createdBy: c.createdBy,
});

/** --max-offline in whole seconds; the control plane checks the range. */
function maxOfflineSeconds(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new UsageError(
      '--max-offline must be a duration such as 90s, 15m, 1h or 3600, ' +
        `or 0 for the agent's own; got ${text}`,
    );
  }
  return ms / 1000;
}

const MAX_OFFLINE_HELP =
  'how long its agents serve what they hold without the control plane, 1m to 7d ' +
  "(e.g. 15m, 1h); 0: each agent's own --max-offline";

interface CreateOptions {
  description: string;
  maxOffline: string;
  json?: boolean;
}

export function registerCollections(program: Command, io: CliIo): void {
  const cmd = program.command('collections').description('manage collections (tenant scopes)');
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(CollectionServiceClient, conn) };
  };

  cmd
    .command('create <name>')
    .description('create a collection (root token)')
    .option('--description <text>', 'what the collection is for', '')
    .option('--max-offline <duration>', MAX_OFFLINE_HELP, '0')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: CreateOptions, c: Command) => {
      const limit = maxOfflineSeconds(opts.maxOffline);
      const { conn, api } = client(c);
      const res = await unary(conn, api.createCollection.bind(api), {
        name,
        description: opts.description,
        maxOfflineSeconds: limit,
      });
      show(io, res.collection!, opts.json === true);
    });

  cmd
    .command('get <name>')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.getCollection.bind(api), { name });
      show(io, res.collection!, opts.json === true);
    });

  cmd
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const rows = await allPages(async (pageToken) => {
        const res = await unary(conn, api.listCollections.bind(api), { pageSize: 0, pageToken });
        return { items: res.collections, next: res.nextPageToken };
      });
      if (opts.json === true) printJson(io, rows.map(CollectionJson));
      else printTable(io, COLUMNS, rows.map(row));
    });

  cmd
    .command('update <name>')
    .description('change a collection; what is not given stays as it is')
    .option('--description <text>', 'new description')
    .option('--max-offline <duration>', MAX_OFFLINE_HELP)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Partial<CreateOptions>, c: Command) => {
      if (opts.description === undefined && opts.maxOffline === undefined) {
        throw new UsageError('collections update needs --description or --max-offline');
      }
      const limit = opts.maxOffline === undefined ? undefined : maxOfflineSeconds(opts.maxOffline);
      const { conn, api } = client(c);
      const res = await unary(conn, api.updateCollection.bind(api), {
        name,
        description: opts.description,
        maxOfflineSeconds: limit,
      });
      show(io, res.collection!, opts.json === true);
    });

  cmd
    .command('delete <name>')
    .description('delete a collection and every value it holds (root token)')
    .action(async (name: string, _opts: object, c: Command) => {
      const { conn, api } = client(c);
      await unary(conn, api.deleteCollection.bind(api), { name });
      io.stderr.write(`deleted collection ${name}\n`);
    });
}
