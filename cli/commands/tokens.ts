import type { Command } from 'commander';
import {
  type AdminToken,
  AdminTokenServiceClient,
  Role,
} from '../../proto/gen/runkeys/v1/admin.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson, printTable } from '../context.js';
import { UsageError } from '../errors.js';
import { allPages } from '../pages.js';

const ROLES: Record<string, Role> = {
  root: Role.ROLE_ROOT,
  admin: Role.ROLE_ADMIN,
  runner: Role.ROLE_RUNNER,
  viewer: Role.ROLE_VIEWER,
};
const roleName = (r: Role): string =>
  Object.entries(ROLES).find(([, v]) => v === r)?.[0] ?? 'unspecified';

const tokenJson = (t: AdminToken) => ({
  id: t.id,
  collection: t.collection,
  role: roleName(t.role),
  description: t.description,
  createTime: isoTime(t.createTime),
  createdBy: t.createdBy,
  expireTime: isoTime(t.expireTime),
  lastUsedTime: isoTime(t.lastUsedTime),
});

const COLUMNS = ['ID', 'ROLE', 'COLLECTION', 'DESCRIPTION', 'EXPIRES', 'LAST USED'];
const tokenRow = (t: AdminToken): string[] => [
  t.id,
  roleName(t.role),
  t.collection,
  t.description,
  isoTime(t.expireTime),
  isoTime(t.lastUsedTime),
];

interface CreateOptions {
  role: string;
  collection?: string;
  description: string;
  ttl: string;
  json?: boolean;
}

export function registerTokens(program: Command, io: CliIo): void {
  const cmd = program.command('tokens').description('manage admin, runner and viewer tokens');
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(AdminTokenServiceClient, conn) };
  };

  cmd
    .command('create')
    .description('create a token; its secret is printed once on stdout')
    .requiredOption('--role <role>', 'admin, runner, viewer (scoped to --collection) or root')
    .option('--collection <name>', 'the collection the token is scoped to')
    .option('--description <text>', 'what the token is for', '')
    .option('--ttl <seconds>', 'lifetime in seconds (0: no expiry)', '0')
    .option('--json', 'print JSON (with the secret)')
    .action(async (opts: CreateOptions, c: Command) => {
      const role = ROLES[opts.role];
      if (role === undefined) {
        throw new UsageError(`--role must be one of ${Object.keys(ROLES).join(', ')}`);
      }
      if (opts.role === 'root' && opts.collection !== undefined) {
        throw new UsageError('--role root takes no --collection: a root token spans them all');
      }
      if (opts.role !== 'root' && (opts.collection === undefined || opts.collection === '')) {
        throw new UsageError(
          `--role ${opts.role} needs --collection: admin, runner and viewer tokens are scoped ` +
            'to one collection',
        );
      }
      const ttl = Number(opts.ttl);
      if (!Number.isSafeInteger(ttl) || ttl < 0) {
        throw new UsageError('--ttl must be a whole number of seconds');
      }
      const { conn, api } = client(c);
      const res = await unary(conn, api.createAdminToken.bind(api), {
        collection: opts.collection ?? '',
        role,
        description: opts.description,
        ttlSeconds: ttl,
      });
      if (opts.json === true) printJson(io, { ...tokenJson(res.adminToken!), secret: res.secret });
      else {
        io.stdout.write(`${res.secret}\n`);
        io.stderr.write(`created ${res.adminToken!.id}; the secret above is shown only once\n`);
      }
    });

  cmd
    .command('get <id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.getAdminToken.bind(api), { id });
      if (opts.json === true) printJson(io, tokenJson(res.adminToken!));
      else printTable(io, COLUMNS, [tokenRow(res.adminToken!)]);
    });

  cmd
    .command('list')
    .option('--collection <name>', 'only tokens of this collection')
    .option('--json', 'print JSON')
    .action(async (opts: { collection?: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const rows = await allPages(async (pageToken) => {
        const res = await unary(conn, api.listAdminTokens.bind(api), {
          collection: opts.collection ?? '',
          pageSize: 0,
          pageToken,
        });
        return { items: res.adminTokens, next: res.nextPageToken };
      });
      if (opts.json === true) printJson(io, rows.map(tokenJson));
      else printTable(io, COLUMNS, rows.map(tokenRow));
    });

  cmd
    .command('delete <id>')
    .description('revoke a token')
    .action(async (id: string, _opts: object, c: Command) => {
      const { conn, api } = client(c);
      await unary(conn, api.deleteAdminToken.bind(api), { id });
      io.stderr.write(`deleted ${id}\n`);
    });
}
