import { type ChildProcess, spawn } from 'node:child_process';
import { CLI, REPO_ROOT } from './cli.js';

/** `runkeys server` as its own process, with whatever flags a test gives it. */
export interface ServerCli {
  child: ChildProcess;
  /** host:port from the "listening" log line. */
  address: string;
  /** Everything written to stderr so far: JSON log lines and, on a first start, the token. */
  stderr(): string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `runkeys server ARGS` and waits until it logs that it is listening. */
export function startServerCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<ServerCli> {
  const child = spawn(process.execPath, [CLI, 'server', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', RUNKEYS_HTTP_LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runkeys server did not listen within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      const line = stderr.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line === undefined) return;
      clearTimeout(timer);
      const { address } = JSON.parse(line) as { address: string };
      resolve({ child, address, stderr: () => stderr, exited });
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`runkeys server exited with ${code} before listening:\n${stderr}`));
    });
  });
}
