import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './cli.js';

/** A control plane running as its own `runkeys server` process, as an operator starts it. */
export interface ServerProcess {
  /** host:port actually bound. */
  address: string;
  dataDir: string;
  rootToken: string;
  /** Everything the server wrote to stderr (its JSON log) so far. */
  log(): string;
  /** Sends the signal and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnServerOptions {
  /** Reuse a data dir (and its master.key) from an earlier server. */
  dataDir?: string;
  /** Defaults to a free loopback port; pass an earlier server's address to restart on it. */
  listen?: string;
  /** The root token of a reused data dir; a new one is written on first start. */
  rootToken?: string;
  /** More `runkeys server` flags. */
  args?: string[];
  /** More environment, e.g. RUNKEYS_MASTER_KEY and RUNKEYS_DATABASE_URL for a replica. */
  env?: Record<string, string>;
}

const LISTEN_TIMEOUT_MS = 15_000;

/**
 * Spawns `runkeys server` and waits for its `"msg":"listening"` log line, which carries the
 * bound address.
 */
export async function spawnServer(options: SpawnServerOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'runkeys-server-'));
  const tokenFile = join(dataDir, 'root-token');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'server',
      '--listen',
      options.listen ?? '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--init-token-file',
      tokenFile,
      '--http-listen',
      '127.0.0.1:0',
      ...(options.args ?? []),
    ],
    { env: { PATH: process.env.PATH ?? '', ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await listeningAddress(child, () => stderr, exited);
  return {
    address,
    dataDir,
    rootToken: options.rootToken ?? readFileSync(tokenFile, 'utf8').trim(),
    log: () => stderr,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

function listeningAddress(
  child: ChildProcess,
  stderr: () => string,
  exited: Promise<void>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not report listening in ${LISTEN_TIMEOUT_MS} ms:\n${stderr()}`));
    }, LISTEN_TIMEOUT_MS);
    const onData = () => {
      // Only whole lines: the last piece may still be arriving.
      for (const line of stderr().split('\n').slice(0, -1)) {
        if (!line.includes('"msg":"listening"')) continue;
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve((JSON.parse(line) as { address: string }).address);
        return;
      }
    };
    child.stderr!.on('data', onData);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening:\n${stderr()}`));
    });
  });
}
