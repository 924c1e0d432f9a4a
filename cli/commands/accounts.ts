import { status } from '@grpc/grpc-js';
import type { Command } from 'commander';
import {
  AccountStatus,
  type ConnectedAccount,
  ConnectedAccountServiceClient,
  ConnectMethod,
  ConnectState,
  type TokenSet,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson, printTable } from '../context.js';
import { UsageError } from '../errors.js';
import { readSecret } from '../input.js';
import { addReadAndDelete } from '../resource.js';

const STATUS: Record<number, string> = {
  [AccountStatus.ACCOUNT_STATUS_CONNECTED]: 'connected',
  [AccountStatus.ACCOUNT_STATUS_REFRESH_FAILING]: 'refresh_failing',
  [AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT]: 'needs_reconnect',
};

const accountJson = (a: ConnectedAccount) => ({
  name: a.name,
  client: a.client,
  status: STATUS[a.status] ?? 'unspecified',
  scopes: a.scopes,
  refreshTokenSet: a.refreshTokenSet,
  accessTokenExpireTime: isoTime(a.accessTokenExpireTime),
  lastRefreshTime: isoTime(a.lastRefreshTime),
  lastError: a.lastError,
  createTime: isoTime(a.createTime),
  createdBy: a.createdBy,
});

const COLUMNS = ['NAME', 'CLIENT', 'STATUS', 'EXPIRES', 'LAST REFRESH', 'LAST ERROR'];
const accountRow = (a: ConnectedAccount): string[] => [
  a.name,
  a.client,
  STATUS[a.status] ?? 'unspecified',
  isoTime(a.accessTokenExpireTime),
  isoTime(a.lastRefreshTime),
  a.lastError,
];

const TOKEN_FIELDS = new Set([
  'access_token',
  'refresh_token',
  'expires_in',
  'scope',
  'token_type',
]);

/** stdin holds a token response as JSON: access_token, refresh_token, expires_in, scope, ... */
function parseTokenSet(text: string): TokenSet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message would quote the input, which holds tokens.
    throw new UsageError('stdin is not a JSON object of a token response');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('stdin is not a JSON object of a token response');
  }
  const o = parsed as Record<string, unknown>;
  const str = (k: string): string => {
    const v = o[k];
    if (v === undefined) return '';
    if (typeof v !== 'string') throw new UsageError(`"${k}" must be a string`);
    return v;
  };
  const expiresIn = o.expires_in ?? 0;
  if (typeof expiresIn !== 'number' || !Number.isSafeInteger(expiresIn) || expiresIn < 0) {
    throw new UsageError('"expires_in" must be whole seconds, 0 or more');
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!TOKEN_FIELDS.has(k) && typeof v === 'string') extra[k] = v;
  }
  return {
    accessToken: str('access_token'),
    refreshToken: str('refresh_token'),
    expiresIn,
    scope: str('scope'),
    extra,
  };
}

interface ConnectOptions {
  collection: string;
  name?: string;
  device?: boolean;
  timeout: string;
  json?: boolean;
}

const POLL_MS = 1_000;

/** A spinner on a terminal; nothing on a pipe, so scripts read clean output. */
class Spinner {
  private i = 0;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly label: string,
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  tick(): void {
    if (!this.tty) return;
    this.out.write(`\r${'|/-\\'[this.i++ % 4]} ${this.label}`);
  }

  stop(): void {
    if (this.tty) this.out.write('\r\x1b[K');
  }
}

export function registerAccounts(program: Command, io: CliIo): void {
  const cmd = program.command('accounts').description('manage connected accounts');
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(ConnectedAccountServiceClient, conn) };
  };

  cmd
    .command('import <name>')
    .description('import an existing token set; stdin is the token response as JSON')
    .requiredOption('--collection <name>', 'collection')
    .requiredOption('--client <name>', 'the OAuth client the tokens belong to')
    .option('--from-file <path>', 'read the token JSON from this file instead of stdin')
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        opts: { collection: string; client: string; fromFile?: string; json?: boolean },
        c: Command,
      ) => {
        const tokens = parseTokenSet(await readSecret(opts, io.stdin, 'token set'));
        const { conn, api } = client(c);
        const res = await unary(conn, api.createConnectedAccount.bind(api), {
          collection: opts.collection,
          name,
          client: opts.client,
          tokens,
        });
        if (opts.json === true) printJson(io, accountJson(res.account!));
        else io.stderr.write(`imported account ${name}\n`);
      },
    );

  cmd
    .command('connect <client>')
    .description('connect an account through an OAuth client (browser, or --device)')
    .requiredOption('--collection <name>', 'collection')
    .option('--name <name>', 'the account to connect (default: the client name)')
    .option('--device', 'use the device authorization grant (no browser on this machine)')
    .option('--timeout <seconds>', 'give up waiting after this long', '600')
    .option('--json', 'print the account as JSON when connected')
    .action(async (clientName: string, opts: ConnectOptions, c: Command) => {
      const timeoutS = Number(opts.timeout);
      if (!Number.isInteger(timeoutS) || timeoutS < 1) {
        throw new UsageError('--timeout must be whole seconds, at least 1');
      }
      const name = opts.name ?? clientName;
      const { conn, api } = client(c);
      const started = await unary(conn, api.startConnect.bind(api), {
        collection: opts.collection,
        name,
        client: clientName,
        method:
          opts.device === true
            ? ConnectMethod.CONNECT_METHOD_DEVICE
            : ConnectMethod.CONNECT_METHOD_AUTHORIZATION_CODE,
      });
      const flow = started.flow!;
      if (flow.method === ConnectMethod.CONNECT_METHOD_DEVICE) {
        io.stderr.write(`To connect account ${name}, visit the address below and enter the code\n`);
        io.stdout.write(`${flow.verificationUri}\ncode: ${flow.userCode}\n`);
        if (flow.verificationUriComplete !== '') {
          io.stderr.write(`(or open ${flow.verificationUriComplete})\n`);
        }
      } else {
        io.stderr.write(`To connect account ${name}, open this address in a browser:\n`);
        io.stdout.write(`${flow.authorizationUrl}\n`);
      }
      const deadline = Date.now() + timeoutS * 1000;
      const spinner = new Spinner(io.stderr, 'waiting for the provider');
      try {
        for (;;) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          const now = await unary(conn, api.getConnectFlow.bind(api), {
            collection: opts.collection,
            id: flow.id,
          });
          const state = now.flow!.state;
          if (state === ConnectState.CONNECT_STATE_CONNECTED) break;
          if (state === ConnectState.CONNECT_STATE_FAILED) {
            throw {
              code: status.FAILED_PRECONDITION,
              details: `connecting failed: ${now.flow!.error}`,
            };
          }
          if (Date.now() >= deadline) {
            throw {
              code: status.DEADLINE_EXCEEDED,
              details: `not connected after ${timeoutS} s; run the command again to retry`,
            };
          }
          spinner.tick();
        }
      } finally {
        spinner.stop();
      }
      const res = await unary(conn, api.getConnectedAccount.bind(api), {
        collection: opts.collection,
        name,
      });
      if (opts.json === true) printJson(io, accountJson(res.account!));
      else io.stderr.write(`connected account ${name}\n`);
    });

  cmd
    .command('refresh <name>')
    .description('refresh the access token now (the control plane also does it on its own)')
    .requiredOption('--collection <name>', 'collection')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { collection: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.refreshConnectedAccount.bind(api), {
        collection: opts.collection,
        name,
      });
      if (opts.json === true) printJson(io, accountJson(res.account!));
      else printTable(io, COLUMNS, [accountRow(res.account!)]);
    });

  addReadAndDelete(cmd, io, {
    key: 'name',
    noun: 'account',
    columns: COLUMNS,
    row: accountRow,
    json: accountJson,
    async get(c, collection, name) {
      const { conn, api } = client(c);
      return (await unary(conn, api.getConnectedAccount.bind(api), { collection, name })).account!;
    },
    async list(c, collection, pageToken) {
      const { conn, api } = client(c);
      const req = { collection, pageSize: 0, pageToken };
      const res = await unary(conn, api.listConnectedAccounts.bind(api), req);
      return { items: res.accounts, next: res.nextPageToken };
    },
    async remove(c, collection, name) {
      const { conn, api } = client(c);
      await unary(conn, api.deleteConnectedAccount.bind(api), { collection, name });
    },
  });
}
