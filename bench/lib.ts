import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(import.meta.dirname, '..');
export const CLI = join(REPO, 'bin', 'runkeys.js');
export const AGENT = join(REPO, 'dist', 'runkeys-agent.cjs');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Peak resident set size of a live process, from /proc (Linux), in KiB. */
export function peakRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m === null ? Number.NaN : Number(m[1]);
}

export interface SpawnedServer {
  child: ChildProcess;
  address: string;
  token: string;
  stop(): Promise<void>;
}

/** Starts `runkeys server` on a free loopback port and waits for its "listening" line. */
export function startServerProcess(dataDir: string): Promise<SpawnedServer> {
  const tokenFile = join(dataDir, 'root-token');
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
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUNKEYS_LOG_FORMAT: 'json' } },
  );
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString('utf8');
      const line = seen.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line === undefined) return;
      child.stderr?.off('data', onData);
      // Warnings and errors of the server are shown; the rest of its log is dropped.
      child.stderr?.on('data', (chunk: Buffer) => {
        for (const l of chunk.toString('utf8').split('\n')) {
          if (/"level":(40|50|60)/.test(l)) process.stderr.write(`server: ${l}\n`);
        }
      });
      const { address } = JSON.parse(line) as { address: string };
      resolve({
        child,
        address,
        token: readFileSync(tokenFile, 'utf8').trim(),
        stop: () =>
          new Promise((r) => {
            child.on('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${seen}`)));
  });
}
