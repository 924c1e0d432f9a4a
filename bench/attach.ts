// 200 concurrent agents attaching again and again to one control plane (a real `runkeys server`
// process on loopback): bundles delivered and opened per second, beside the first-message rate
// of a bare grpc-js server-streaming method (bench/bare-stream-server.ts) driven by the same
// client loop in the same run, in alternating rounds. Key pairs, proofs and runs are made
// before the clock starts.
// Run: npm run build && npx tsx bench/attach.ts [concurrency] [attaches]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { prove } from '../common/proof.js';
import { newKeyPair, openWith, sharedKey } from '../common/sealing.js';
import {
  AgentServiceClient,
  type AttachRequest,
  type AttachResponse,
  Envelope,
} from '../proto/gen/runkeys/v1/runs.js';
import { seedCollection } from './admin.js';
import { cpuMs, median, REPO, startServerProcess } from './lib.js';

const CONCURRENCY = Number(process.argv[2] ?? 200);
const TOTAL = Number(process.argv[3] ?? 5000);
const ROUNDS = 10;

interface Job {
  request: AttachRequest;
  shared: Uint8Array;
}

/**
 * Runs jobs with CONCURRENCY callers, each over its own connection as separate agents would be
 * (one shared connection cancelling hundreds of streams a second trips Node's HTTP/2
 * rapid-reset protection); returns completed attaches per second.
 */
async function drive(address: string, jobs: Job[], open: boolean): Promise<number> {
  const clients = Array.from(
    { length: CONCURRENCY },
    () =>
      new AgentServiceClient(address, credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }),
  );
  let next = 0;
  let done = 0;
  const one = (client: AgentServiceClient, job: Job) =>
    new Promise<void>((resolve, reject) => {
      const call = client.attach(job.request);
      call.on('data', (msg: AttachResponse) => {
        if (msg.message?.$case !== 'sealed') return;
        if (open) {
          const env = Envelope.decode(openWith(msg.message.value, job.shared));
          if (env.body?.$case !== 'bundle') reject(new Error('expected a bundle'));
        }
        done++;
        call.cancel();
        resolve();
      });
      call.on('error', (err: { code: number }) => {
        if (err.code !== 1) reject(err);
      });
      call.on('end', () => resolve());
    });
  const worker = async (client: AgentServiceClient) => {
    while (next < jobs.length) await one(client, jobs[next++]!);
  };
  // Connections are made before the clock starts.
  await Promise.all(clients.map((c) => new Promise((r) => c.waitForReady(Date.now() + 10_000, r))));
  const t0 = performance.now();
  await Promise.all(clients.map(worker));
  const seconds = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  if (done !== jobs.length) throw new Error(`${done} of ${jobs.length} attaches completed`);
  return done / seconds;
}

const work = mkdtempSync(join(tmpdir(), 'runkeys-bench-attach-'));
const server = await startServerProcess(join(work, 'data'));
const seed = await seedCollection(server.address, server.token);
const bare = spawn(
  process.execPath,
  ['--import', 'tsx', join(REPO, 'bench', 'bare-stream-server.ts')],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const barePort = await new Promise<string>((resolve) =>
  bare.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
);

try {
  const jobs: Job[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const vars = await seed.createRun();
    const keys = newKeyPair();
    const secret = Buffer.from(vars.RUNKEYS_BOOTSTRAP_SECRET, 'base64url');
    jobs.push({
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
    });
  }
  // Rounds alternate between the two servers so that drift in the machine's load hits both;
  // each side's figure is the median of its rounds after the first.
  const floors: number[] = [];
  const rates: number[] = [];
  const bareCpu: number[] = [];
  const serverCpu: number[] = [];
  const per = Math.ceil(jobs.length / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const round = jobs.slice(r * per, (r + 1) * per);
    const b0 = cpuMs(bare.pid!);
    floors.push(await drive(`127.0.0.1:${barePort}`, round, false));
    bareCpu.push((cpuMs(bare.pid!) - b0) / round.length);
    const s0 = cpuMs(server.child.pid!);
    rates.push(await drive(server.address, round, true));
    serverCpu.push((cpuMs(server.child.pid!) - s0) / round.length);
  }
  // The first round warms the JIT on both sides and is left out of the medians.
  const floor = median(floors.slice(1));
  const runkeys = median(rates.slice(1));
  const result = {
    bench: 'attach',
    concurrency: CONCURRENCY,
    attaches: TOTAL,
    rounds: ROUNDS,
    runkeys_bundles_per_s: Math.round(runkeys),
    bare_grpc_first_message_per_s: Math.round(floor),
    ratio: Number((runkeys / floor).toFixed(2)),
    round_ratios: rates.map((x, i) => Number((x / floors[i]!).toFixed(2))),
    round_rates: rates.map(Math.round),
    server_cpu_ms_per_attach: Number(median(serverCpu.slice(1)).toFixed(2)),
    bare_cpu_ms_per_attach: Number(median(bareCpu.slice(1)).toFixed(2)),
    round_floors: floors.map(Math.round),
    target_ratio_min: 0.5,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  seed.close();
  bare.kill('SIGTERM');
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
