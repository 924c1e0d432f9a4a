// Attaches per second with two control-plane replicas on one PostgreSQL database against one
// replica, on the same machine, printed as a ratio. Each configuration gets a fresh database;
// both stay up for the whole run and rounds alternate between them (the order flips every
// round), so drift in the machine's load hits both. In the two-replica rounds the callers are
// split evenly between the two addresses, each over its own connection, as behind an L4
// round-robin balancer. Key pairs, proofs and runs are made before the clock starts; the first
// round of each configuration warms the JIT and is left out.
//
// PostgreSQL: RUNKEYS_TEST_DATABASE_URL (an admin URL) when set, else a throwaway cluster made
// here the way test/global-setup.ts makes one.
// Run: npm run build && npx tsx bench/replicas.ts [concurrency] [attaches-per-round] [rounds]
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import pg from 'pg';
import { prove } from '../common/proof.js';
import { newKeyPair, openWith, sharedKey } from '../common/sealing.js';
import {
  AgentServiceClient,
  type AttachRequest,
  type AttachResponse,
  Envelope,
} from '../proto/gen/runkeys/v1/runs.js';
import { findBinDir, PG_ROOT, startCluster } from '../test/helpers/pg-cluster.js';
import { seedCollection } from './admin.js';
import { CLI, cpuMs, median, peakRssKiB } from './lib.js';

const CONCURRENCY = Number(process.argv[2] ?? 100);
const PER_ROUND = Number(process.argv[3] ?? 1000);
/** Rounds per configuration, the first of which is dropped. */
const ROUNDS = Number(process.argv[4] ?? 4);
/** Runs made at once before the clock starts. */
const PREP_CONCURRENCY = 8;

interface Job {
  request: AttachRequest;
  shared: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// /proc

/** Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [11..14] times. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  } catch {
    return undefined; // gone
  }
}

/**
 * CPU ms of a PostgreSQL server: the postmaster, its live children (backends, checkpointer,
 * WAL writer, autovacuum), and the children it has reaped (cutime/cstime of the postmaster).
 */
function postgresCpuMs(postmaster: number): number {
  const ms = (f: string[], from: number, to: number) => {
    let ticks = 0;
    for (let i = from; i <= to; i++) ticks += Number(f[i]);
    return (ticks * 1000) / 100;
  };
  const own = statFields(postmaster);
  if (own === undefined) return Number.NaN;
  let total = ms(own, 11, 14);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f !== undefined && Number(f[1]) === postmaster) total += ms(f, 11, 14);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

interface Postgres {
  /** Admin URL (database `postgres`). */
  url: string;
  /** The postmaster's pid when the cluster is ours, for its CPU time. */
  postmaster: number | undefined;
  stop(): Promise<void>;
}

async function asAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database; returns its URL and a drop. */
async function freshDatabase(adminUrl: string, prefix: string) {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await asAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => asAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)),
  };
}

// ---------------------------------------------------------------------------------------------
// Replicas

interface Replica {
  child: ChildProcess;
  address: string;
  /** The root token, when this replica was the first on its database. */
  token: string | undefined;
  stop(): Promise<void>;
}

/**
 * Starts `runkeys server` on the given database and waits for its "listening" line. Its log goes
 * to a file beside its data (not through this process, which runs the clients); warnings and
 * errors from it are shown when it stops.
 */
async function startReplica(dataDir: string, env: Record<string, string>): Promise<Replica> {
  mkdirSync(dataDir, { recursive: true });
  const tokenFile = join(dataDir, 'root-token');
  const logFile = join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'w');
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      CLI,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--init-token-file',
      tokenFile,
    ],
    {
      stdio: ['ignore', 'ignore', logFd],
      env: { ...process.env, RUNKEYS_LOG_FORMAT: 'json', ...env },
    },
  );
  closeSync(logFd);
  let exited = child.exitCode !== null;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    for (const l of readFileSync(logFile, 'utf8').split('\n')) {
      if (/"level":(40|50|60)/.test(l)) process.stderr.write(`replica: ${l}\n`);
    }
  };
  const deadline = Date.now() + 20_000;
  let line: string | undefined;
  while (line === undefined) {
    if (exited || Date.now() > deadline) {
      const log = readFileSync(logFile, 'utf8');
      await stop();
      throw new Error(`replica did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
    line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"msg":"listening"'));
  }
  const { address } = JSON.parse(line) as { address: string };
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  return { child, address, token, stop };
}

// ---------------------------------------------------------------------------------------------
// Load

interface Driven {
  rate: number;
  /** Attaches each address served. */
  served: number[];
  /** Per sampled process: CPU ms used while the clock ran. */
  cpu: number[];
  clientCpuMs: number;
}

/**
 * Runs jobs with CONCURRENCY callers, caller i on addresses[i % n], each over its own connection
 * as separate agents would be (one shared connection cancelling hundreds of streams a second
 * trips Node's HTTP/2 rapid-reset protection). `sample` reads the CPU of the processes under
 * test just as the clock starts and stops.
 */
async function drive(addresses: string[], jobs: Job[], sample: () => number[]): Promise<Driven> {
  const clients = Array.from({ length: CONCURRENCY }, (_, i) => ({
    at: i % addresses.length,
    client: new AgentServiceClient(addresses[i % addresses.length]!, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    }),
  }));
  const served = addresses.map(() => 0);
  let next = 0;
  const one = (client: AgentServiceClient, at: number, job: Job) =>
    new Promise<void>((resolve, reject) => {
      const call = client.attach(job.request);
      call.on('data', (msg: AttachResponse) => {
        if (msg.message?.$case !== 'sealed') return;
        const env = Envelope.decode(openWith(msg.message.value, job.shared));
        if (env.body?.$case !== 'bundle') reject(new Error('expected a bundle'));
        served[at]!++;
        call.cancel();
        resolve();
      });
      call.on('error', (err: { code: number }) => {
        if (err.code !== 1) reject(err);
      });
      call.on('end', () => resolve());
    });
  const worker = async ({ client, at }: { client: AgentServiceClient; at: number }) => {
    while (next < jobs.length) await one(client, at, jobs[next++]!);
  };
  try {
    // Connections are made before the clock starts.
    await Promise.all(
      clients.map(
        ({ client }) =>
          new Promise<void>((resolve, reject) =>
            client.waitForReady(Date.now() + 10_000, (err) =>
              err === undefined || err === null ? resolve() : reject(err),
            ),
          ),
      ),
    );
    const before = sample();
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(clients.map(worker));
    const seconds = (performance.now() - t0) / 1000;
    const clientUsage = process.cpuUsage(client0);
    const after = sample();
    const done = served.reduce((a, b) => a + b, 0);
    if (done !== jobs.length) throw new Error(`${done} of ${jobs.length} attaches completed`);
    return {
      rate: done / seconds,
      served,
      cpu: after.map((x, i) => x - before[i]!),
      clientCpuMs: (clientUsage.user + clientUsage.system) / 1000,
    };
  } finally {
    for (const { client } of clients) client.close();
  }
}

/** Runs of the seeded collection, with an agent key pair and bootstrap proof each. */
async function makeJobs(seed: Awaited<ReturnType<typeof seedCollection>>, n: number) {
  const jobs: Job[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const vars = await seed.createRun();
      const keys = newKeyPair();
      const secret = Buffer.from(vars.RUNKEYS_BOOTSTRAP_SECRET, 'base64url');
      jobs[i] = {
        request: {
          runId: vars.RUNKEYS_RUN_ID,
          agentPublicKey: Buffer.from(keys.publicKey),
          bootstrapProof: Buffer.from(
            prove(secret, 'bootstrap', vars.RUNKEYS_RUN_ID, keys.publicKey),
          ),
          resumeProof: Buffer.alloc(0),
          heldVersion: 0,
        },
        shared: sharedKey(Buffer.from(vars.RUNKEYS_SERVER_KEY, 'base64'), keys.secretKey),
      };
    }
  };
  await Promise.all(Array.from({ length: PREP_CONCURRENCY }, worker));
  return jobs;
}

interface Setup {
  replicas: Replica[];
  /** Jobs per round. */
  rounds: Job[][];
  rates: number[];
  /** Per round: each replica's CPU ms per attach it served. */
  replicaCpu: number[][];
  /** Per round: all replicas' CPU ms per attach. */
  totalCpu: number[];
  pgCpu: number[];
  clientCpu: number[];
  served: number[][];
}

// ---------------------------------------------------------------------------------------------
// Main

const cleanup: (() => Promise<unknown>)[] = [];
const work = mkdtempSync(join(tmpdir(), 'runkeys-bench-replicas-'));
cleanup.push(async () => rmSync(work, { recursive: true, force: true }));
const started = performance.now();
let stopping: Promise<void> | undefined;
const stopAll = () => {
  stopping ??= (async () => {
    for (const step of cleanup.splice(0).reverse()) {
      await step().catch((err: unknown) => process.stderr.write(`cleanup: ${String(err)}\n`));
    }
  })();
  return stopping;
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

try {
  const given = process.env.RUNKEYS_TEST_DATABASE_URL || undefined;
  let postgres: Postgres;
  if (given !== undefined) {
    postgres = { url: given, postmaster: undefined, stop: async () => undefined };
  } else {
    const binDir = findBinDir();
    if (binDir === undefined) throw new Error(`no PostgreSQL found under ${PG_ROOT}`);
    postgres = await startCluster(binDir);
    cleanup.push(() => postgres.stop());
  }
  const masterKey = randomBytes(32).toString('base64');
  const pgCpuNow = () =>
    postgres.postmaster === undefined ? Number.NaN : postgresCpuMs(postgres.postmaster);

  const setUp = async (name: string, count: number): Promise<Setup> => {
    const db = await freshDatabase(postgres.url, `rk_bench_${name}`);
    cleanup.push(() => db.drop());
    const env = { RUNKEYS_DATABASE_URL: db.url, RUNKEYS_MASTER_KEY: masterKey };
    const replicas: Replica[] = [];
    // One after the other: the first migrates the database and writes the root token.
    for (let i = 0; i < count; i++) {
      const replica = await startReplica(join(work, `${name}-${i}`), env);
      cleanup.push(() => replica.stop());
      replicas.push(replica);
    }
    const token = replicas[0]!.token;
    if (token === undefined) throw new Error(`${name}: the first replica wrote no root token`);
    const seed = await seedCollection(replicas[0]!.address, token);
    try {
      const jobs = await makeJobs(seed, PER_ROUND * ROUNDS);
      const rounds = Array.from({ length: ROUNDS }, (_, r) =>
        jobs.slice(r * PER_ROUND, (r + 1) * PER_ROUND),
      );
      return {
        replicas,
        rounds,
        rates: [],
        replicaCpu: [],
        totalCpu: [],
        pgCpu: [],
        clientCpu: [],
        served: [],
      };
    } finally {
      seed.close();
    }
  };

  const one = await setUp('one', 1);
  const two = await setUp('two', 2);
  const prepSeconds = (performance.now() - started) / 1000;

  const round = async (s: Setup, r: number) => {
    const pids = s.replicas.map((x) => x.child.pid!);
    const d = await drive(
      s.replicas.map((x) => x.address),
      s.rounds[r]!,
      () => [...pids.map(cpuMs), pgCpuNow()],
    );
    const n = s.rounds[r]!.length;
    s.rates.push(d.rate);
    s.served.push(d.served);
    s.replicaCpu.push(pids.map((_, i) => d.cpu[i]! / Math.max(1, d.served[i]!)));
    s.totalCpu.push(d.cpu.slice(0, pids.length).reduce((a, b) => a + b, 0) / n);
    s.pgCpu.push(d.cpu[pids.length]! / n);
    s.clientCpu.push(d.clientCpuMs / n);
  };
  // The order flips every round, so neither configuration always runs right after the other.
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [one, two] : [two, one];
    for (const s of order) await round(s, r);
  }

  const kept = (xs: number[]) => median(xs.slice(1));
  const fixed = (x: number, digits = 2) => (Number.isNaN(x) ? null : Number(x.toFixed(digits)));
  const oneRate = kept(one.rates);
  const twoRate = kept(two.rates);
  const cores = availableParallelism();
  const result = {
    bench: 'replicas',
    concurrency: CONCURRENCY,
    attaches_per_round: PER_ROUND,
    rounds_per_config: ROUNDS,
    cores,
    one_replica_attaches_per_s: Math.round(oneRate),
    two_replicas_attaches_per_s: Math.round(twoRate),
    ratio: fixed(twoRate / oneRate),
    round_ratios: one.rates.map((x, i) => fixed(two.rates[i]! / x)),
    round_rates_one: one.rates.map(Math.round),
    round_rates_two: two.rates.map(Math.round),
    two_replicas_served_share: fixed(
      two.served.slice(1).reduce((a, s) => a + s[0]!, 0) /
        two.served.slice(1).reduce((a, s) => a + s[0]! + s[1]!, 0),
    ),
    one_replica_cpu_ms_per_attach: fixed(kept(one.totalCpu)),
    two_replicas_cpu_ms_per_attach_each: [0, 1].map((i) =>
      fixed(kept(two.replicaCpu.map((c) => c[i]!))),
    ),
    two_replicas_cpu_ms_per_attach_sum: fixed(kept(two.totalCpu)),
    postgres_cpu_ms_per_attach_one: fixed(kept(one.pgCpu)),
    postgres_cpu_ms_per_attach_two: fixed(kept(two.pgCpu)),
    client_cpu_ms_per_attach_one: fixed(kept(one.clientCpu)),
    client_cpu_ms_per_attach_two: fixed(kept(two.clientCpu)),
    replica_peak_rss_mib: [...one.replicas, ...two.replicas].map((x) =>
      Math.round(peakRssKiB(x.child.pid!) / 1024),
    ),
    db_pool_per_replica: 10,
    postgres:
      given === undefined ? 'own throwaway cluster, fsync off' : 'RUNKEYS_TEST_DATABASE_URL',
    prep_s: fixed(prepSeconds, 1),
    total_s: fixed((performance.now() - started) / 1000, 1),
    note:
      `${cores} cores shared by the replicas, PostgreSQL and the ${CONCURRENCY} clients: ` +
      'with few cores the ratio shows what a second replica costs (another process, pool and ' +
      'JIT contending for the same CPUs), not how replicas scale. With a core or more per ' +
      'replica and PostgreSQL and the clients elsewhere, expect it to approach 2 until ' +
      'PostgreSQL (postgres_cpu_ms_per_attach, pool of 10 per replica) becomes the limit. ' +
      'CPU figures are /proc ticks (10 ms resolution) while the clock ran; postgres includes ' +
      'all its processes.',
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await stopAll();
}
