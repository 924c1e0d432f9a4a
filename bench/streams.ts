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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
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
  CreateRunRequest,
  type CreateRunResponse,
  RunServiceClient,
} from '../proto/gen/runkeys/v1/runs.js';
import { call } from '../test/helpers/server.js';
import { cpuMs, median, rssKiB, startServerProcess, within } from './lib.js';
import { all, ClientThread, now, STREAMS_PER_CHANNEL } from './stream-clients.js';

const CREATE_CONCURRENCY = 50;
/** Attaches in flight at once, over all threads. */
const ATTACH_WINDOW = 400;
const ROUNDS = 3;

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

await main();
