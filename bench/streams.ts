// 10,000 attached agents on one control plane (a real `runkeys server` process on loopback,
// SQLite): the server's resident memory per open stream, and the time for one variable change
// to reach every agent. The agents are light gRPC clients over 100 channels, spread over worker
// threads (each with its own event loop and a share of the channels), so that receiving 10,000
// updates is not one client event loop's queue. A real agent opens its update on its own CPU;
// here the clients keep each sealed message with its arrival time (one monotonic clock for all
// threads), the clock stops when the last agent's sealed update arrived, and every message is
// opened and checked (it must be a bundle of a newer version carrying the new value) after the
// clock. A stream whose first message in a round was something else (a heartbeat) is followed
// until its bundle comes, and its time is that bundle's arrival.
// Run: npm run build && npx tsx bench/streams.ts [agents, 10000] [client threads, 2]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { credentials } from '@grpc/grpc-js';
import { openWith, sharedKey } from '../common/sealing.js';
import {
  CollectionServiceClient,
  CreateCollectionRequest,
} from '../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceClient, UpdateEnvVarRequest } from '../proto/gen/runkeys/v1/env_vars.js';
import {
  ProviderCredential,
  ProviderKeyServiceClient,
  UpdateProviderKeyRequest,
} from '../proto/gen/runkeys/v1/provider_keys.js';
import {
  AgentServiceClient,
  type AttachResponse,
  CreateRunRequest,
  type CreateRunResponse,
  Envelope,
  RunServiceClient,
  type SealedMessage,
} from '../proto/gen/runkeys/v1/runs.js';
import { agentKeys, attachRequest, keyOf, secretOf } from '../test/helpers/attach.js';
import { call } from '../test/helpers/server.js';
import { cpuMs, median, startServerProcess } from './lib.js';

const STREAMS_PER_CHANNEL = 100;
const CREATE_CONCURRENCY = 50;
/** Attaches in flight at once, over all threads. */
const ATTACH_WINDOW = 400;
const ROUNDS = 3;

/** Milliseconds on CLOCK_MONOTONIC: one clock for every thread of the process. */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

interface AgentRun {
  runId: string;
  bootstrapSecret: string;
  serverPublicKey: string;
}

interface Share {
  address: string;
  runs: AgentRun[];
  window: number;
}

/** Parent to client thread. */
type Command =
  | { kind: 'attach' }
  | { kind: 'arm'; value: string }
  | { kind: 'open' }
  | { kind: 'close' };

/** Client thread to parent. */
type Report =
  | { kind: 'ready' }
  | { kind: 'attached' }
  | { kind: 'armed' }
  | { kind: 'arrived' }
  | { kind: 'done'; last: number; wrong: string[] }
  | { kind: 'closed' }
  | { kind: 'failed'; error: string };

/** One client thread: its share of the agents, their channels, and what each received. */
function clients(share: Share): void {
  const port = parentPort!;
  const post = (r: Report) => port.postMessage(r);
  const n = share.runs.length;
  const c = credentials.createInsecure();
  const channels: AgentServiceClient[] = [];
  for (let i = 0; i < n; i += STREAMS_PER_CHANNEL) {
    channels.push(
      new AgentServiceClient(share.address, c, { 'grpc.use_local_subchannel_pool': 1 }),
    );
  }
  const shared: Uint8Array[] = [];
  /** What each agent holds: the flag's value and its bundle's version. */
  const flags: string[] = new Array(n).fill('');
  const versions: number[] = new Array(n).fill(0);
  /** Sealed messages of this round not opened yet, with their arrival times. */
  const inbox: { sealed: SealedMessage; at: number }[][] = Array.from({ length: n }, () => []);
  /** When each agent's bundle of this round arrived; 0 until it has. */
  const gotAt: number[] = new Array(n).fill(0);
  let phase: 'attach' | 'collect' | 'open' = 'attach';
  let value = '';
  let attached = 0;
  let arrived = 0;
  let done = 0;
  const wrong: string[] = [];

  const fail = (error: string) => post({ kind: 'failed', error });
  /** Opens one message; in a round, a bundle newer than the agent holds ends its wait. */
  const open = (i: number, sealed: SealedMessage, at: number) => {
    const envelope = Envelope.decode(openWith(sealed, shared[i]!));
    if (envelope.body?.$case !== 'bundle') return;
    const bundle = envelope.body.value;
    if (bundle.version <= versions[i]!) return;
    versions[i] = bundle.version;
    flags[i] = bundle.entries.find((e) => e.name === 'FLAG')?.value ?? '';
    if (phase === 'attach') {
      if (++attached === n) post({ kind: 'attached' });
      return;
    }
    if (gotAt[i] !== 0) return;
    gotAt[i] = at;
    if (flags[i] !== value) wrong.push(`agent ${i}: FLAG=${flags[i]}, expected ${value}`);
    if (++done === n) post({ kind: 'done', last: Math.max(...gotAt), wrong });
  };
  const received = (i: number, sealed: SealedMessage, at: number) => {
    if (phase === 'collect') {
      const box = inbox[i]!;
      box.push({ sealed, at });
      if (box.length === 1 && ++arrived === n) post({ kind: 'arrived' });
    } else {
      open(i, sealed, at);
    }
  };

  const attach = async () => {
    for (let i = 0; i < n; i++) {
      const run = share.runs[i]!;
      const keys = agentKeys();
      shared.push(sharedKey(keyOf(run.serverPublicKey), keys.secretKey));
      const stream = channels[Math.floor(i / STREAMS_PER_CHANNEL)]!.attach(
        attachRequest({ runId: run.runId, credential: secretOf(run.bootstrapSecret), keys }),
      );
      stream.on('data', (msg: AttachResponse) => {
        if (msg.message?.$case !== 'sealed') return;
        const at = now();
        try {
          received(i, msg.message.value, at);
        } catch (err) {
          fail(`agent ${i}: ${String(err)}`);
        }
      });
      stream.on('error', (err: Error) => fail(`agent ${i}: stream ended: ${err.message}`));
      // Attach in waves, so the server is measured holding streams, not queueing attaches.
      while (i + 1 - attached > share.window) await new Promise((r) => setTimeout(r, 5));
    }
  };

  port.on('message', (cmd: Command) => {
    switch (cmd.kind) {
      case 'attach':
        attach().catch((err: unknown) => fail(String(err)));
        break;
      case 'arm':
        phase = 'collect';
        value = cmd.value;
        arrived = 0;
        done = 0;
        wrong.length = 0;
        gotAt.fill(0);
        for (const box of inbox) box.length = 0;
        post({ kind: 'armed' });
        break;
      case 'open':
        // Every agent of every thread has received something: open what came, in arrival order.
        phase = 'open';
        for (let i = 0; i < n; i++) {
          for (const m of inbox[i]!.splice(0)) open(i, m.sealed, m.at);
        }
        break;
      case 'close':
        for (const ch of channels) ch.close();
        post({ kind: 'closed' });
        break;
    }
  });
  post({ kind: 'ready' });
}

/** Resident memory of a process, in KiB (Linux /proc). */
function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? Number.NaN);
}

/**
 * A thread runs this file again. Run by tsx, the thread loads it through tsx's API: a worker
 * does not inherit the loader, and a `--import tsx` in its execArgv registers too late.
 */
const SELF = JSON.stringify(import.meta.url);
const WORKER_BOOT = import.meta.url.endsWith('.ts')
  ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
      .then((tsx) => tsx.tsImport(${SELF}, ${SELF}))`
  : `import(${SELF})`;

/** A client thread, driven by commands; its reports are kept, by kind, until asked for. */
class ClientThread {
  private readonly worker: Worker;
  private readonly reports: Report[] = [];
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;

  constructor(share: Share) {
    this.worker = new Worker(WORKER_BOOT, { eval: true, workerData: share });
    this.worker.on('message', (r: Report) => {
      if (r.kind === 'failed') this.failure ??= new Error(r.error);
      else this.reports.push(r);
      this.wake();
    });
    this.worker.on('error', (err) => {
      this.failure ??= err;
      this.wake();
    });
  }

  /** The next report of that kind, whenever it came; rejects once the thread failed. */
  async next<K extends Report['kind']>(kind: K): Promise<Extract<Report, { kind: K }>> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const at = this.reports.findIndex((r) => r.kind === kind);
      if (at >= 0) return this.reports.splice(at, 1)[0] as Extract<Report, { kind: K }>;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  send(cmd: Command): void {
    this.worker.postMessage(cmd);
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The promise's value, or an error once `ms` passed (a hung server ends the run, not hangs it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  // Settled either way, so a failure after the timeout does not end the process.
  p.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends a command to every thread and waits for each one's report. */
function all<K extends Report['kind']>(
  threads: ClientThread[],
  cmd: Command | undefined,
  kind: K,
  ms: number,
): Promise<Extract<Report, { kind: K }>[]> {
  if (cmd !== undefined) for (const t of threads) t.send(cmd);
  return within(Promise.all(threads.map((t) => t.next(kind))), ms, `"${kind}"`);
}

async function main(): Promise<void> {
  const agents = Number(process.argv[2] ?? 10_000);
  const channelCount = Math.ceil(agents / STREAMS_PER_CHANNEL);
  const threadCount = Math.min(Number(process.argv[3] ?? 2), channelCount);
  const work = mkdtempSync(join(tmpdir(), 'runkeys-bench-streams-'));
  const server = await startServerProcess(join(work, 'data'));
  const serverPid = server.child.pid!;
  const c = credentials.createInsecure();
  const t = server.token;
  const threads: ClientThread[] = [];
  try {
    const collections = new CollectionServiceClient(server.address, c);
    const providers = new ProviderKeyServiceClient(server.address, c);
    const env = new EnvVarServiceClient(server.address, c);
    const runs = new RunServiceClient(server.address, c);
    await call(
      collections.createCollection.bind(collections),
      CreateCollectionRequest.fromPartial({ name: 'bench' }),
      t,
    );
    await call(
      providers.updateProviderKey.bind(providers),
      UpdateProviderKeyRequest.fromPartial({
        collection: 'bench',
        provider: 'openai',
        credential: ProviderCredential.fromPartial({ apiKey: 'sk-bench-streams-00000001' }),
        allowMissing: true,
      }),
      t,
    );
    const setFlag = (value: string) =>
      call(
        env.updateEnvVar.bind(env),
        UpdateEnvVarRequest.fromPartial({
          collection: 'bench',
          name: 'FLAG',
          value,
          sensitive: false,
          allowMissing: true,
        }),
        t,
      );
    await setFlag('v0');

    const created: CreateRunResponse[] = [];
    while (created.length < agents) {
      const n = Math.min(CREATE_CONCURRENCY, agents - created.length);
      const batch = await within(
        Promise.all(
          Array.from({ length: n }, () =>
            call(
              runs.createRun.bind(runs),
              CreateRunRequest.fromPartial({
                collection: 'bench',
                runtime: { provider: 'openai', auth: '', account: '' },
              }),
              t,
            ),
          ),
        ),
        60_000,
        'runs to be created',
      );
      created.push(...batch);
    }
    for (const client of [collections, providers, runs]) client.close();
    // Whole channels to each thread, as evenly as they go.
    for (let k = 0; k < threadCount; k++) {
      const from = Math.floor((channelCount * k) / threadCount) * STREAMS_PER_CHANNEL;
      const to = Math.floor((channelCount * (k + 1)) / threadCount) * STREAMS_PER_CHANNEL;
      threads.push(
        new ClientThread({
          address: server.address,
          runs: created.slice(from, Math.min(to, agents)).map((r) => ({
            runId: r.run!.id,
            bootstrapSecret: r.bootstrapSecret,
            serverPublicKey: r.serverPublicKey,
          })),
          window: Math.ceil(ATTACH_WINDOW / threadCount),
        }),
      );
    }
    await all(threads, undefined, 'ready', 60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const rssBefore = rssKiB(serverPid);
    await all(threads, { kind: 'attach' }, 'attached', 300_000);
    const idle0 = { cpu: cpuMs(serverPid), at: now() };
    await new Promise((r) => setTimeout(r, 2_000));
    const rssAfter = rssKiB(serverPid);
    const idleCpu = (cpuMs(serverPid) - idle0.cpu) / (now() - idle0.at);

    const fanout: number[] = [];
    const serverCpu: number[] = [];
    const clientCpu: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const value = `v${round}`;
      await all(threads, { kind: 'arm', value }, 'armed', 10_000);
      const cpu0 = { server: cpuMs(serverPid), clients: process.cpuUsage() };
      const t0 = now();
      await within(setFlag(value), 60_000, `the change to ${value}`);
      // The threads hold what arrived, unopened, until every agent has received a message.
      await all(threads, undefined, 'arrived', 60_000);
      const cpu1 = { server: cpuMs(serverPid), clients: process.cpuUsage(cpu0.clients) };
      const reports = await all(threads, { kind: 'open' }, 'done', 60_000);
      fanout.push(Math.max(...reports.map((r) => r.last)) - t0);
      serverCpu.push(cpu1.server - cpu0.server);
      clientCpu.push((cpu1.clients.user + cpu1.clients.system) / 1000);
      const wrong = reports.flatMap((r) => r.wrong);
      if (wrong.length > 0) throw new Error(`agents did not get ${value}: ${wrong.slice(0, 5)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const result = {
      bench: 'streams',
      agents,
      channels: channelCount,
      client_threads: threads.length,
      server_rss_before_kib: rssBefore,
      server_rss_attached_kib: rssAfter,
      rss_per_stream_kib: Number(((rssAfter - rssBefore) / agents).toFixed(1)),
      change_to_all_ms: Math.round(median(fanout)),
      round_change_to_all_ms: fanout.map(Math.round),
      server_idle_cpu_pct: Math.round(idleCpu * 100),
      round_server_cpu_ms: serverCpu.map(Math.round),
      round_client_cpu_ms: clientCpu.map(Math.round),
      target_rss_per_stream_kib_max: 30,
      target_change_to_all_ms_max: 2000,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.allSettled(threads.map((th) => all([th], { kind: 'close' }, 'closed', 5_000)));
    await Promise.allSettled(threads.map((th) => th.terminate()));
    const stopped = server.stop();
    await within(stopped, 20_000, 'the server to stop').catch((err: Error) => {
      process.stderr.write(`${err.message}; killing it\n`);
      server.child.kill('SIGKILL');
      return stopped;
    });
    rmSync(work, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else clients(workerData as Share);
