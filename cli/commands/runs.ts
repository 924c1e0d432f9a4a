import type { Command } from 'commander';
import {
  type CreateRunResponse,
  type DeliveryReceipt,
  type Run,
  RunServiceClient,
  RunState,
} from '../../proto/gen/runkeys/v1/runs.js';
import { makeClient, unary } from '../client.js';
import {
  adminConnection,
  type CliIo,
  collect,
  isoTime,
  printJson,
  printTable,
} from '../context.js';
import { UsageError } from '../errors.js';
import { allPages } from '../pages.js';

const STATES: Record<string, RunState> = {
  pending: RunState.RUN_STATE_PENDING,
  attached: RunState.RUN_STATE_ATTACHED,
  ended: RunState.RUN_STATE_ENDED,
  expired: RunState.RUN_STATE_EXPIRED,
};
const stateName = (s: RunState): string =>
  Object.entries(STATES).find(([, v]) => v === s)?.[0] ?? 'unspecified';

const runJson = (r: Run) => ({
  id: r.id,
  collection: r.collection,
  provider: r.runtime?.provider ?? '',
  auth: r.runtime?.auth ?? '',
  state: stateName(r.state),
  labels: r.labels,
  createTime: isoTime(r.createTime),
  expireTime: isoTime(r.expireTime),
  attachTime: isoTime(r.attachTime),
  endTime: isoTime(r.endTime),
  endReason: r.endReason,
  createdBy: r.createdBy,
  deliveredVersion: r.deliveredVersion,
  appliedVersion: r.appliedVersion,
  leaks: r.leaks.map((l) => ({
    name: l.name,
    stream: l.stream,
    count: l.count,
    fingerprint: l.fingerprint,
    firstTime: isoTime(l.firstTime),
    lastTime: isoTime(l.lastTime),
  })),
});

const receiptJson = (r: DeliveryReceipt) => ({
  runId: r.runId,
  version: r.version,
  applyTime: isoTime(r.applyTime),
  receiveTime: isoTime(r.receiveTime),
  envFileWritten: r.envFileWritten,
  commandStarted: r.commandStarted,
  fingerprint: r.fingerprint,
});

interface ReceiptOptions {
  collection: string;
  run?: string;
  name?: string;
  fingerprint?: string;
  version?: string;
  limit: string;
  json?: boolean;
}

const COLUMNS = ['ID', 'PROVIDER', 'STATE', 'CREATED', 'EXPIRES', 'VERSION'];
const runRow = (r: Run): string[] => [
  r.id,
  r.runtime?.provider ?? '',
  stateName(r.state),
  isoTime(r.createTime),
  isoTime(r.expireTime),
  String(r.deliveredVersion),
];

/** What a sandbox needs, as NAME=value lines or one JSON object. */
function sandboxVariables(res: CreateRunResponse, addr: string): Record<string, string> {
  return {
    RUNKEYS_ADDR: addr,
    RUNKEYS_RUN_ID: res.run!.id,
    RUNKEYS_BOOTSTRAP_SECRET: res.bootstrapSecret,
    RUNKEYS_SERVER_KEY: res.serverPublicKey,
  };
}

interface CreateOptions {
  collection: string;
  provider: string;
  account?: string;
  ttl: string;
  label: string[];
  agentAddr?: string;
  env?: boolean;
  json?: boolean;
}

function labelsOf(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new UsageError('--label must be KEY=VALUE');
    out[spec.slice(0, eq)] = spec.slice(eq + 1);
  }
  return out;
}

export function registerRuns(program: Command, io: CliIo): void {
  const cmd = program.command('runs').description('create, inspect and end runs');
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(RunServiceClient, conn) };
  };

  cmd
    .command('create')
    .description("create a run; prints what the sandbox's agent needs")
    .requiredOption('--collection <name>', 'collection')
    .requiredOption('--provider <provider>', 'the runtime provider')
    .option(
      '--account <name>',
      'authenticate the runtime through this connected account instead of the provider key',
    )
    .option('--ttl <seconds>', 'lifetime in seconds (0: one hour)', '0')
    .option('--label <key=value>', 'a label (repeatable)', collect, [])
    .option('--agent-addr <host:port>', 'RUNKEYS_ADDR for the sandbox, if not --addr')
    .option('--env', 'print NAME=value lines for the sandbox')
    .option('--json', 'print the sandbox variables as one JSON object')
    .action(async (opts: CreateOptions, c: Command) => {
      const ttl = Number(opts.ttl);
      if (!Number.isSafeInteger(ttl) || ttl < 0)
        throw new UsageError('--ttl must be whole seconds');
      const { conn, api } = client(c);
      const res = await unary(conn, api.createRun.bind(api), {
        collection: opts.collection,
        runtime: {
          provider: opts.provider,
          auth: opts.account === undefined ? 'api_key' : 'account',
          account: opts.account ?? '',
        },
        ttlSeconds: ttl,
        labels: labelsOf(opts.label),
      });
      const vars = sandboxVariables(res, opts.agentAddr ?? conn.addr);
      if (opts.json === true) printJson(io, vars);
      else if (opts.env === true) {
        for (const [k, v] of Object.entries(vars)) io.stdout.write(`${k}=${v}\n`);
      } else {
        printTable(io, COLUMNS, [runRow(res.run!)]);
        io.stderr.write('the bootstrap secret is shown only with --env or --json\n');
      }
    });

  cmd
    .command('get <id>')
    .requiredOption('--collection <name>', 'collection')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { collection: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.getRun.bind(api), { collection: opts.collection, id });
      const run = res.run!;
      if (opts.json === true) {
        printJson(io, runJson(run));
        return;
      }
      printTable(io, [...COLUMNS, 'APPLIED'], [[...runRow(run), String(run.appliedVersion)]]);
      if (run.leaks.length === 0) return;
      io.stdout.write('\nvalues its scrubber replaced:\n');
      printTable(
        io,
        ['NAME', 'STREAM', 'COUNT', 'FINGERPRINT', 'LAST'],
        run.leaks.map((l) => [
          l.name,
          l.stream,
          String(l.count),
          l.fingerprint,
          isoTime(l.lastTime),
        ]),
      );
    });

  cmd
    .command('receipts')
    .description(
      'which runs applied which bundle version, and when; with --name (and --fingerprint), ' +
        'the runs that received that value',
    )
    .requiredOption('--collection <name>', 'collection')
    .option('--run <id>', 'only this run')
    .option('--name <name>', 'only bundles carrying this name (as the run sees it)')
    .option('--fingerprint <hmac>', 'with --name: only this value (see runkeys audit)')
    .option('--version <n>', 'only this bundle version')
    .option('--limit <n>', 'at most this many receipts', '100')
    .option('--json', 'print JSON')
    .action(async (opts: ReceiptOptions, c: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be >= 1');
      const version = opts.version === undefined ? 0 : Number(opts.version);
      if (opts.version !== undefined && (!Number.isSafeInteger(version) || version < 1)) {
        throw new UsageError('--version must be a bundle version, at least 1');
      }
      const { conn, api } = client(c);
      const receipts: DeliveryReceipt[] = [];
      let pageToken = '';
      do {
        const res = await unary(conn, api.listReceipts.bind(api), {
          collection: opts.collection,
          runId: opts.run ?? '',
          name: opts.name ?? '',
          fingerprint: opts.fingerprint ?? '',
          version,
          pageSize: Math.min(limit - receipts.length, 1000),
          pageToken,
        });
        receipts.push(...res.receipts);
        pageToken = res.nextPageToken;
      } while (pageToken !== '' && receipts.length < limit);
      if (opts.json === true) printJson(io, receipts.map(receiptJson));
      else {
        const columns = ['RUN', 'VERSION', 'APPLIED', 'RECEIVED', 'ENV FILE', 'COMMAND'];
        printTable(
          io,
          opts.name === undefined ? columns : [...columns, 'FINGERPRINT'],
          receipts.map((r) => [
            r.runId,
            String(r.version),
            isoTime(r.applyTime),
            isoTime(r.receiveTime),
            r.envFileWritten ? 'written' : '-',
            r.commandStarted ? 'started' : '-',
            ...(opts.name === undefined ? [] : [r.fingerprint]),
          ]),
        );
      }
    });

  cmd
    .command('list')
    .requiredOption('--collection <name>', 'collection')
    .option('--state <state>', 'pending, attached, ended or expired')
    .option('--json', 'print JSON')
    .action(async (opts: { collection: string; state?: string; json?: boolean }, c: Command) => {
      const state = opts.state === undefined ? RunState.RUN_STATE_UNSPECIFIED : STATES[opts.state];
      if (state === undefined)
        throw new UsageError(`--state must be one of ${Object.keys(STATES).join(', ')}`);
      const { conn, api } = client(c);
      const rows = await allPages(async (pageToken) => {
        const res = await unary(conn, api.listRuns.bind(api), {
          collection: opts.collection,
          state,
          pageSize: 0,
          pageToken,
        });
        return { items: res.runs, next: res.nextPageToken };
      });
      if (opts.json === true) printJson(io, rows.map(runJson));
      else printTable(io, COLUMNS, rows.map(runRow));
    });

  cmd
    .command('end <id>')
    .description('end a run: its agents remove what they wrote')
    .requiredOption('--collection <name>', 'collection')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { collection: string; json?: boolean }, c: Command) => {
      const { conn, api } = client(c);
      const res = await unary(conn, api.endRun.bind(api), { collection: opts.collection, id });
      if (opts.json === true) printJson(io, runJson(res.run!));
      else io.stderr.write(`ended ${id}\n`);
    });
}
