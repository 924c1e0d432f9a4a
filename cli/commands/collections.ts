import type { Command } from 'commander';
import {
  type Collection,
  CollectionServiceClient,
} from '../../proto/gen/runkeys/v1/collections.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson, printTable } from '../context.js';
import { allPages } from '../pages.js';

function show(io: CliIo, c: Collection, json: boolean): void {
  if (json) printJson(io, CollectionJson(c));
  else
    printTable(
      io,
      ['NAME', 'DESCRIPTION', 'CREATED'],
      [[c.name, c.description, isoTime(c.createTime)]],
    );
}

const CollectionJson = (c: Collection) => ({
  name: c.name,
  description: c.description,
  createTime: isoTime(c.createTime),
  updateTime: isoTime(c.updateTime),
  createdBy: c.createdBy,
});

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
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { description: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.createCollection.bind(api), {
        name,
        description: opts.description,
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
      else {
        printTable(
          io,
          ['NAME', 'DESCRIPTION', 'CREATED'],
          rows.map((r) => [r.name, r.description, isoTime(r.createTime)]),
        );
      }
    });

  cmd
    .command('update <name>')
    .requiredOption('--description <text>', 'new description')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { description: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.updateCollection.bind(api), {
        name,
        description: opts.description,
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
