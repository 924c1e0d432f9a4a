import type { Command } from 'commander';
import { type EnvVar, EnvVarServiceClient } from '../../proto/gen/runkeys/v1/env_vars.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson } from '../context.js';
import { readSecret, refuseValueArguments } from '../input.js';
import { addReadAndDelete } from '../resource.js';

const envJson = (v: EnvVar) => ({
  name: v.name,
  sensitive: v.sensitive,
  ...(v.sensitive ? {} : { value: v.value }),
  valueBytes: v.valueBytes,
  fingerprint: v.fingerprint,
  createTime: isoTime(v.createTime),
  updateTime: isoTime(v.updateTime),
  createdBy: v.createdBy,
  updatedBy: v.updatedBy,
});

const COLUMNS = ['NAME', 'KIND', 'VALUE', 'FINGERPRINT', 'UPDATED'];
const envRow = (v: EnvVar): string[] => [
  v.name,
  v.sensitive ? 'sensitive' : 'plain',
  v.sensitive ? `(${v.valueBytes} bytes, write-only)` : v.value,
  v.fingerprint,
  isoTime(v.updateTime),
];

interface SetOptions {
  collection: string;
  plain?: boolean;
  allowOverride?: boolean;
  fromFile?: string;
  keepTrailingNewline?: boolean;
  json?: boolean;
}

export function registerEnv(program: Command, io: CliIo): void {
  const cmd = program.command('env').description("manage a collection's environment variables");
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(EnvVarServiceClient, conn) };
  };

  cmd
    .command('set <name>')
    // Extra arguments are accepted only to be refused with a clear reason: they would be values.
    .allowExcessArguments()
    .description('create or replace a variable; the value is read from stdin or --from-file')
    .requiredOption('--collection <name>', 'collection')
    .option('--plain', 'plain configuration: readable back and never scrubbed')
    .option('--allow-override', 'allow a name that changes how programs load (PATH, LD_PRELOAD...)')
    .option('--from-file <path>', 'read the value from this file instead of stdin')
    .option('--keep-trailing-newline', 'keep a trailing newline of the input')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: SetOptions, c: Command) => {
      refuseValueArguments(c.args.slice(1), 'value');
      const value = await readSecret(opts, io.stdin, 'value');
      const { conn, api } = client(c);
      const res = await unary(conn, api.updateEnvVar.bind(api), {
        collection: opts.collection,
        name,
        value,
        sensitive: opts.plain !== true,
        allowOverride: opts.allowOverride === true,
        allowMissing: true,
      });
      const v = res.envVar!;
      if (opts.json === true) printJson(io, envJson(v));
      else io.stderr.write(`${res.created ? 'created' : 'updated'} ${v.name} (${v.fingerprint})\n`);
    });

  addReadAndDelete(cmd, io, {
    key: 'name',
    noun: 'variable',
    columns: COLUMNS,
    row: envRow,
    json: envJson,
    async get(c, collection, name) {
      const { conn, api } = client(c);
      return (await unary(conn, api.getEnvVar.bind(api), { collection, name })).envVar!;
    },
    async list(c, collection, pageToken) {
      const { conn, api } = client(c);
      const res = await unary(conn, api.listEnvVars.bind(api), {
        collection,
        pageSize: 0,
        pageToken,
      });
      return { items: res.envVars, next: res.nextPageToken };
    },
    async remove(c, collection, name) {
      const { conn, api } = client(c);
      await unary(conn, api.deleteEnvVar.bind(api), { collection, name });
    },
  });
}
