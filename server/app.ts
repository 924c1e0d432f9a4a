import type { Server } from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { bearerAuthenticator } from './auth/authenticate.js';
import { checkListen, type ServerConfig } from './config.js';
import { ensureRootToken } from './first-start.js';
import { buildGrpcServer, SERVICE_NAMES, serverCredentials } from './grpc/server.js';
import { openKeyring } from './keys-at-start.js';
import type { Logger } from './logger.js';
import { BundleCache } from './runs/bundle.js';
import { RunKeys } from './runs/run-keys.js';
import { ChangeWatcher } from './runs/watcher.js';
import { type Db, migrate, openSqlite } from './store/db.js';

export interface RunningServer {
  /** The address actually bound, with the real port when --listen asked for port 0. */
  address: string;
  /** Stops taking calls, lets calls in flight finish (up to graceMs), closes the store. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  stderr: NodeJS.WritableStream;
  /** The clock for expiries (bootstrap secrets, runs, tokens); tests pass their own. */
  now?: () => number;
}

/**
 * Starts the control plane:
 * 1. open the store and apply migrations;
 * 2. open the keyring (master key, check value);
 * 3. on first start, make the root token;
 * 4. bind gRPC and report SERVING.
 */
export async function startServer(
  config: ServerConfig,
  log: Logger,
  options: StartOptions,
): Promise<RunningServer> {
  checkListen(config);
  // 1.
  const db = openSqlite(config.dataDir);
  try {
    await migrate(db);
    // 2.
    const keyring = await openKeyring(db, config.dataDir, config.masterKey, log);
    // 3.
    await ensureRootToken(db, { file: config.initTokenFile, stderr: options.stderr }, log);
    // 4.
    const watcher = new ChangeWatcher(db, log);
    const runKeys = new RunKeys(db, keyring);
    await runKeys.current();
    const now = options.now ?? Date.now;
    const deps = { db, keyring, now, runKeys, watcher, bundles: new BundleCache() };
    const adapter = { authenticate: bearerAuthenticator(db, now), log };
    const { server, health } = buildGrpcServer(adapter, deps, log);
    const port = await bind(server, config);
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    const address = `${host}:${port}`;
    for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'SERVING');
    log.info({ address, dataDir: config.dataDir, tls: config.tls !== undefined }, 'listening');
    return {
      address,
      close: (graceMs = 10_000) => {
        watcher.close();
        return shutdown(server, health, db, graceMs);
      },
    };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

function bind(server: Server, config: ServerConfig): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(config.listen, serverCredentials(config), (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}

async function shutdown(
  server: Server,
  health: HealthImplementation,
  db: Db,
  graceMs: number,
): Promise<void> {
  for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'NOT_SERVING');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  await db.destroy();
}
