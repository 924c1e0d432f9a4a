// 10,000 attached agents on one control plane (a real `runkeys server` process on loopback,
// SQLite): the server's resident memory per open stream, and the time for one variable change
// to reach every agent. The agents are light in-process clients spread over 100 channels. A
// real agent opens its update on its own CPU; here one process holds all 10,000, so the clock
// stops when the last sealed update arrives, and every update is opened and checked (it must
// carry the new value) after the clock.
// Run: npm run build && npx tsx bench/streams.ts [agents]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { openWith, sharedKey } from '../common/sealing.js';
import { CollectionServiceClient } from '../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceClient } from '../proto/gen/runkeys/v1/env_vars.js';
import {
  ProviderCredential,
  ProviderKeyServiceClient,
} from '../proto/gen/runkeys/v1/provider_keys.js';
import {
  AgentServiceClient,
  type AttachResponse,
  type CreateRunResponse,
  Envelope,
  RunServiceClient,
  type SealedMessage,
} from '../proto/gen/runkeys/v1/runs.js';
import { agentKeys, attachRequest, keyOf, secretOf } from '../test/helpers/attach.js';
import { call } from '../test/helpers/server.js';
import { median, startServerProcess } from './lib.js';

const AGENTS = Number(process.argv[2] ?? 10_000);
const STREAMS_PER_CHANNEL = 100;
const CREATE_CONCURRENCY = 50;
const ROUNDS = 3;

/** Resident memory of a process, in KiB (Linux /proc). */
function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? Number.NaN);
}

const work = mkdtempSync(join(tmpdir(), 'runkeys-bench-streams-'));
const server = await startServerProcess(join(work, 'data'));
const c = credentials.createInsecure();
const t = server.token;
const channels: AgentServiceClient[] = [];
try {
  const collections = new CollectionServiceClient(server.address, c);
  const providers = new ProviderKeyServiceClient(server.address, c);
  const env = new EnvVarServiceClient(server.address, c);
  const runs = new RunServiceClient(server.address, c);
  await call(
    collections.createCollection.bind(collections),
    { name: 'bench', description: '', maxOfflineSeconds: 0 },
    t,
  );
  await call(
    providers.updateProviderKey.bind(providers),
    {
      collection: 'bench',
      provider: 'openai',
      credential: ProviderCredential.fromPartial({ apiKey: 'sk-bench-streams-00000001' }),
      allowMissing: true,
    },
    t,
  );
  const setFlag = (value: string) =>
    call(
      env.updateEnvVar.bind(env),
      {
        collection: 'bench',
        name: 'FLAG',
        value,
        sensitive: false,
        allowOverride: false,
        allowMissing: true,
      },
      t,
    );
  await setFlag('v0');

  const created: CreateRunResponse[] = [];
  while (created.length < AGENTS) {
    const n = Math.min(CREATE_CONCURRENCY, AGENTS - created.length);
    const batch = await Promise.all(
      Array.from({ length: n }, () =>
        call(
          runs.createRun.bind(runs),
          {
            collection: 'bench',
            runtime: { provider: 'openai', auth: '', account: '' },
            ttlSeconds: 0,
            labels: {},
          },
          t,
        ),
      ),
    );
    created.push(...batch);
  }
  for (let i = 0; i < AGENTS / STREAMS_PER_CHANNEL; i++) {
    channels.push(
      new AgentServiceClient(server.address, c, { 'grpc.use_local_subchannel_pool': 1 }),
    );
  }
  await new Promise((r) => setTimeout(r, 1_000));
  const rssBefore = rssKiB(server.child.pid!);

  // What each agent holds, and when it got it.
  const flags: string[] = new Array(AGENTS).fill('');
  const gotAt: number[] = new Array(AGENTS).fill(0);
  const pending: (SealedMessage | undefined)[] = new Array(AGENTS).fill(undefined);
  const shared: Uint8Array[] = [];
  let opening = true;
  let attached = 0;
  const open = (i: number, sealed: SealedMessage) => {
    const envelope = Envelope.decode(openWith(sealed, shared[i]!));
    if (envelope.body?.$case !== 'bundle') return;
    if (flags[i] === '') attached++;
    flags[i] = envelope.body.value.entries.find((e) => e.name === 'FLAG')?.value ?? '';
  };
  for (let i = 0; i < AGENTS; i++) {
    const run = created[i]!;
    const keys = agentKeys();
    shared.push(sharedKey(keyOf(run.serverPublicKey), keys.secretKey));
    const stream = channels[Math.floor(i / STREAMS_PER_CHANNEL)]!.attach(
      attachRequest({ runId: run.run!.id, credential: secretOf(run.bootstrapSecret), keys }),
    );
    stream.on('data', (msg: AttachResponse) => {
      if (msg.message?.$case !== 'sealed') return;
      gotAt[i] = performance.now();
      if (opening) open(i, msg.message.value);
      else pending[i] = msg.message.value;
    });
    stream.on('error', () => {});
    // Attach in waves, so the server is measured holding streams, not queueing attaches.
    if (i % 200 === 199) {
      while (attached < i - 400) await new Promise((r) => setTimeout(r, 5));
    }
  }
  const until = async (ready: () => boolean, what: string, ms: number) => {
    const deadline = performance.now() + ms;
    while (!ready()) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until(() => attached === AGENTS, 'every agent to attach', 300_000);
  await new Promise((r) => setTimeout(r, 2_000));
  const rssAfter = rssKiB(server.child.pid!);

  const fanout: number[] = [];
  opening = false;
  for (let round = 1; round <= ROUNDS; round++) {
    const value = `v${round}`;
    pending.fill(undefined);
    const t0 = performance.now();
    await setFlag(value);
    await until(() => pending.every((p) => p !== undefined), 'every update to arrive', 60_000);
    fanout.push(Math.max(...gotAt) - t0);
    for (const [i, p] of pending.entries()) open(i, p!);
    if (!flags.every((f) => f === value)) throw new Error(`an agent did not get ${value}`);
  }
  const result = {
    bench: 'streams',
    agents: AGENTS,
    channels: channels.length,
    server_rss_before_kib: rssBefore,
    server_rss_attached_kib: rssAfter,
    rss_per_stream_kib: Number(((rssAfter - rssBefore) / AGENTS).toFixed(1)),
    change_to_all_ms: Math.round(median(fanout)),
    round_change_to_all_ms: fanout.map(Math.round),
    target_rss_per_stream_kib_max: 30,
    target_change_to_all_ms_max: 2000,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  for (const ch of channels) ch.close();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
