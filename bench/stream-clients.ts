// The client side of bench/streams.ts: light agents in worker threads. Each thread holds a share
// of the agents and their channels, keeps every sealed message with its arrival time, and opens
// and checks them when told to; the parent drives the threads with commands and waits for their
// reports.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { credentials } from '@grpc/grpc-js';
import { openWith, sharedKey } from '../common/sealing.js';
import {
  AgentServiceClient,
  type AttachResponse,
  Envelope,
  type SealedMessage,
} from '../proto/gen/runkeys/v1/runs.js';
import { agentKeys, attachRequest, keyOf, secretOf } from '../test/helpers/attach.js';
import { within } from './lib.js';

export const STREAMS_PER_CHANNEL = 100;

/** Milliseconds on CLOCK_MONOTONIC: one clock for every thread of the process. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface AgentRun {
  runId: string;
  bootstrapSecret: string;
  serverPublicKey: string;
}

export interface Share {
  address: string;
  runs: AgentRun[];
  window: number;
}

/** Parent to client thread. */
export type Command =
  | { kind: 'attach' }
  | { kind: 'arm'; value: string }
  | { kind: 'open' }
  | { kind: 'close' };

/** Client thread to parent. */
export type Report =
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

/**
 * A thread runs this file. Run by tsx, the thread loads it through tsx's API: a worker
 * does not inherit the loader, and a `--import tsx` in its execArgv registers too late.
 */
const SELF = JSON.stringify(import.meta.url);
const WORKER_BOOT = import.meta.url.endsWith('.ts')
  ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
      .then((tsx) => tsx.tsImport(${SELF}, ${SELF}))`
  : `import(${SELF})`;

/** A client thread, driven by commands; its reports are kept, by kind, until asked for. */
export class ClientThread {
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

/** Sends a command to every thread and waits for each one's report. */
export function all<K extends Report['kind']>(
  threads: ClientThread[],
  cmd: Command | undefined,
  kind: K,
  ms: number,
): Promise<Extract<Report, { kind: K }>[]> {
  if (cmd !== undefined) for (const t of threads) t.send(cmd);
  return within(Promise.all(threads.map((t) => t.next(kind))), ms, `"${kind}"`);
}

if (!isMainThread) clients(workerData as Share);
