/**
 * Starting a throwaway PostgreSQL cluster, for the tests' global setup and for benchmarks.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

export const PG_ROOT = '/usr/lib/postgresql';
const SETTINGS = [
  "listen_addresses = '127.0.0.1'",
  'fsync = off',
  'synchronous_commit = off',
  'full_page_writes = off',
  'max_connections = 300',
];

const run = promisify(execFile);

/** The bin dir of the newest PostgreSQL under /usr/lib/postgresql, else one on PATH. */
export function findBinDir(): string | undefined {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    : [];
  if (versions[0] !== undefined) return join(PG_ROOT, versions[0], 'bin');
  const onPath = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  return onPath.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}

/** A loopback port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export interface Cluster {
  /** Admin URL (database `postgres`, user `postgres`, trust auth). */
  url: string;
  /** The postmaster's pid, for its CPU time. */
  postmaster: number;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL cluster: initdb in a temp dir, started on 127.0.0.1 at a free port
 * with settings for tests (no fsync), stopped and removed by stop() or at process exit. As root
 * (CI), initdb and pg_ctl run as the `postgres` OS user, since PostgreSQL refuses root.
 */
export async function startCluster(binDir: string): Promise<Cluster> {
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'runkeys-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  // As root, runuser drops to the postgres user; cwd is the temp dir, which that user can enter.
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(binDir, tool), ...args]]
      : [join(binDir, tool), args];
  const pg = (tool: string, args: string[]) => run(...command(tool, args), { cwd: dir });
  const logTail = () =>
    existsSync(logFile)
      ? `\n${readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')}`
      : '';

  // A postmaster.pid means a server may be up, also after a failed or timed-out start.
  const mayRun = () => existsSync(join(dataDir, 'postmaster.pid'));
  const stopSync = () => {
    if (mayRun()) {
      try {
        const [cmd, argv] = command('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']);
        execFileSync(cmd, argv, { cwd: dir, stdio: 'ignore' });
      } catch {
        // best effort on exit
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const stop = async () => {
    process.off('exit', stopSync);
    if (mayRun()) {
      await pg('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    if (asRoot) {
      let uid: number;
      let gid: number;
      try {
        uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
        gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      } catch {
        throw new Error('running as root, but there is no `postgres` OS user to run PostgreSQL');
      }
      chownSync(dir, uid, gid);
    }
    try {
      await pg('initdb', [
        '-D',
        dataDir,
        '--auth=trust',
        '-U',
        'postgres',
        '--no-sync',
        '--encoding=UTF8',
        '--locale=C',
      ]);
    } catch (err) {
      throw new Error(`initdb failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
    // Appending keeps the file's owner (postgres when root).
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      `\n# runkeys tests\n${[...SETTINGS, `unix_socket_directories = '${dir}'`].join('\n')}\n`,
    );
    // The port is probed, then taken by postgres: another process can win the race, so retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        await pg('pg_ctl', [
          'start',
          '-D',
          dataDir,
          '-l',
          logFile,
          '-w',
          '-t',
          '30',
          '-o',
          `-p ${port}`,
        ]);
        process.once('exit', stopSync);
        const postmaster = Number(
          readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
        );
        return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, postmaster, stop };
      } catch (err) {
        if (attempt >= 3) {
          const stderr = (err as { stderr?: string }).stderr ?? String(err);
          throw new Error(`pg_ctl start failed: ${stderr}${logTail()}`);
        }
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
