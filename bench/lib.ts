import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(import.meta.dirname, '..');
export const CLI = join(REPO, 'bin', 'runkeys.js');
export const AGENT = join(REPO, 'dist', 'runkeys-agent.cjs');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A size from /proc/PID/status (Linux), in KiB. */
function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m === null ? Number.NaN : Number(m[1]);
}

/** Peak resident set size of a live process, in KiB. */
export const peakRssKiB = (pid: number): number => statusKiB(pid, 'VmHWM');

/** Resident set size of a live process now, in KiB. */
export const rssKiB = (pid: number): number => statusKiB(pid, 'VmRSS');

/** The promise's value, or an error once `ms` passed (a hung server ends the run, not hangs it). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
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

export interface SpawnedServer {
  child: ChildProcess;
  address: string;
  token: string;
  stop(): Promise<void>;
}

/**
 * Starts `runkeys server` on a free loopback port and waits for its "listening" line. Its log
 * goes to a file beside the data, not through this process, which also runs the benchmark's
 * clients; warnings and errors from it are shown when it stops.
 */
export async function startServerProcess(dataDir: string): Promise<SpawnedServer> {
  mkdirSync(dataDir, { recursive: true });
  const tokenFile = join(dataDir, 'root-token');
  const logFile = join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'w');
  // BENCH_SERVER_NODE_ARGS passes node flags to the server, e.g. "--cpu-prof".
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      CLI,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--init-token-file',
      tokenFile,
      '--http-listen',
      '127.0.0.1:0',
      // The benchmarks measure throughput, not the per-token write limit.
      '--admin-write-rate',
      '1000000',
    ],
    { stdio: ['ignore', 'ignore', logFd], env: { ...process.env, RUNKEYS_LOG_FORMAT: 'json' } },
  );
  closeSync(logFd);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 20_000;
  let line: string | undefined;
  while (line === undefined) {
    if (exited || Date.now() > deadline) {
      throw new Error(`server did not start: ${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
    line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"msg":"listening"'));
  }
  const { address } = JSON.parse(line) as { address: string };
  return {
    child,
    address,
    token: readFileSync(tokenFile, 'utf8').trim(),
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => {
          for (const l of readFileSync(logFile, 'utf8').split('\n')) {
            if (/"level":(40|50|60)/.test(l)) process.stderr.write(`server: ${l}\n`);
          }
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** CPU time (user + system) a process has used so far, in milliseconds (Linux /proc). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}
