// Median wall time from starting the one-file agent to its .env written (control plane already
// up on loopback), beside `node -e 0`, measured in the same run, with the peak RSS of both.
// Run: npm run build && npx tsx bench/bootstrap.ts [iterations]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { seedCollection } from './admin.js';
import { AGENT, median, peakRssKiB, startServerProcess } from './lib.js';

const ITERATIONS = Number(process.argv[2] ?? 21);
const work = mkdtempSync(join(tmpdir(), 'runkeys-bench-bootstrap-'));

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not written in ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** node -e 0, and a variant that reports its own peak RSS as it ends. */
async function nodeBaseline(): Promise<{ ms: number; rssKiB: number }> {
  const t0 = performance.now();
  await new Promise((r) => spawn(process.execPath, ['-e', '0']).on('exit', r));
  const ms = performance.now() - t0;
  const probe = spawn(process.execPath, [
    '-e',
    "const s = require('fs').readFileSync('/proc/self/status', 'utf8');" +
      'process.stdout.write(/VmHWM:\\s+(\\d+)/.exec(s)[1])',
  ]);
  let out = '';
  probe.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise((r) => probe.on('exit', r));
  return { ms, rssKiB: Number(out) };
}

const server = await startServerProcess(join(work, 'data'));
const seed = await seedCollection(server.address, server.token);
const agentMs: number[] = [];
const agentRss: number[] = [];
const nodeMs: number[] = [];
const nodeRss: number[] = [];
try {
  for (let i = 0; i < ITERATIONS; i++) {
    const vars = await seed.createRun();
    const dir = join(work, `sandbox-${i}`);
    const t0 = performance.now();
    const agent = spawn(process.execPath, [AGENT, '--log-level', 'warn'], {
      cwd: (await import('node:fs')).mkdirSync(dir, { recursive: true }) ?? dir,
      env: { PATH: process.env.PATH, ...vars },
      stdio: 'ignore',
    });
    await waitForFile(join(dir, 'env', '.env'), 10_000);
    agentMs.push(performance.now() - t0);
    agentRss.push(peakRssKiB(agent.pid!));
    await new Promise((r) => {
      agent.on('exit', r);
      agent.kill('SIGTERM');
    });
    const base = await nodeBaseline();
    nodeMs.push(base.ms);
    nodeRss.push(base.rssKiB);
  }
} finally {
  seed.close();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}

const result = {
  bench: 'bootstrap',
  iterations: ITERATIONS,
  agent_median_ms: Number(median(agentMs).toFixed(1)),
  node_e0_median_ms: Number(median(nodeMs).toFixed(1)),
  ratio: Number((median(agentMs) / median(nodeMs)).toFixed(2)),
  agent_peak_rss_mib: Number((Math.max(...agentRss) / 1024).toFixed(1)),
  node_e0_peak_rss_mib: Number((Math.max(...nodeRss) / 1024).toFixed(1)),
  targets: { ratio_max: 1.6, agent_peak_rss_mib_max: 64 },
};
process.stdout.write(`${JSON.stringify(result)}\n`);
