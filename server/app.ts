import type { Server } from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { sql } from 'kysely';
import { AuditRetention, DEFAULT_RETENTION_SWEEP } from './audit-retention.js';
import { bearerAuthenticator } from './auth/authenticate.js';
import { checkListen, type ServerConfig } from './config.js';
import { ensureRootToken } from './first-start.js';
import { buildGrpcServer, SERVICE_NAMES, serverCredentials } from './grpc/server.js';
import { type HttpListener, startHttp } from './http.js';
import { openKeyring } from './keys-at-start.js';
import { DEFAULT_LIMITS, Limits } from './limits.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { Connector } from './oauth/connect.js';
import { DEFAULT_REFRESH, Refresher, type RefreshHooks } from './oauth/refresh.js';
import { Presence } from './presence.js';
import { BundleCache } from './runs/bundle.js';
import { DeliveryLog } from './runs/deliveries.js';
import { RunKeys } from './runs/run-keys.js';
import { ChangeWatcher } from './runs/watcher.js';
import { GroupCommit } from './store/group-commit.js';
import { openStore } from './store/open.js';
import { ChangeFeed } from './store/postgres.js';

export interface RunningServer {
  /** The address actually bound, with the real port when --listen asked for port 0. */
  address: string;
  /** The HTTP listener's address and redirect URI, when there is one. */
  http?: { address: string; redirectUri: string };
  /** Stops taking calls, lets calls in flight finish (up to graceMs), closes the store. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  stderr: NodeJS.WritableStream;
  /** The clock for expiries (bootstrap secrets, runs, tokens); tests pass their own. */
  now?: () => number;
  /** Fault injection for tests of what a crash mid-refresh leaves. */
  refreshHooks?: RefreshHooks;
}

/**
 * Starts the control plane:
 * 1. open the store and apply migrations, and record this server's presence in it;
 * 2. open the keyring (master key, check value);
 * 3. on first start, make the root token;
 * 4. start the HTTP listener (OAuth callback) when asked, bind gRPC and report SERVING;
 * 5. start the refresh sweep, and the audit retention sweep when asked.
 */
export async function startServer(
  config: ServerConfig,
  log: Logger,
  options: StartOptions,
): Promise<RunningServer> {
  checkListen(config);
  // 1.
  const { db, dialect } = await openStore(config, log);
  let feed: ChangeFeed | undefined;
  // Before the keyring: a master key rotation that starts after this sees the server.
  const presence = new Presence(db, log);
  try {
    await presence.start();
    // 2.
    const keyring = await openKeyring(db, config.dataDir, config.masterKey, log);
    // 3.
    await ensureRootToken(db, { file: config.initTokenFile, stderr: options.stderr }, log);
    // 4.
    const watcher = new ChangeWatcher(db, log);
    if (config.databaseUrl !== undefined) {
      feed = new ChangeFeed(config.databaseUrl, () => watcher.poke(), log);
      await feed.start();
    }
    const runKeys = new RunKeys(db, keyring);
    await runKeys.current();
    const now = options.now ?? Date.now;
    const base = { db, keyring, now, changed: () => watcher.poke() };
    const metrics = new Metrics(db);
    const limits = new Limits({ ...DEFAULT_LIMITS, ...config.limits });
    const refresher = new Refresher(
      base,
      log,
      { ...DEFAULT_REFRESH, ...config.refresh },
      options.refreshHooks,
      () => watcher.poke(),
      (outcome) => metrics.refreshes.inc({ outcome }),
    );
    let http: HttpListener | undefined;
    const connector = new Connector(
      base,
      log,
      () => http?.redirectUri,
      () => watcher.poke(),
    );
    const deps = {
      ...base,
      runKeys,
      watcher,
      bundles: new BundleCache(),
      deliveries: new DeliveryLog(db),
      claims: new GroupCommit(db),
      metrics,
      limits,
      refresher,
      connector,
    };
    const adapter = { authenticate: bearerAuthenticator(db, now), log, metrics, limits };
    const { server, health } = buildGrpcServer(adapter, deps, log);
    let serving = false;
    const ready = async () => {
      if (!serving) return false;
      await sql`select 1`.execute(db);
      return true;
    };
    if (config.httpListen !== undefined) {
      http = await startHttp(config, { connector, metrics, ready }, log);
    }
    const port = await bind(server, config);
    // 5.
    refresher.start();
    connector.startSweeping();
    const retention =
      config.auditRetentionMs === undefined
        ? undefined
        : new AuditRetention(
            db,
            { ...DEFAULT_RETENTION_SWEEP, keepMs: config.auditRetentionMs },
            now,
            log,
          );
    retention?.start();
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    const address = `${host}:${port}`;
    for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'SERVING');
    serving = true;
    const store = dialect === 'sqlite' ? { dataDir: config.dataDir } : { store: 'postgres' };
    log.info({ address, ...store, tls: config.tls !== undefined }, 'listening');
    return {
      address,
      http: http && { address: http.address, redirectUri: http.redirectUri },
      close: async (graceMs = 10_000) => {
        serving = false;
        watcher.close();
        await Promise.all([
          refresher.stop(),
          connector.stop(),
          http?.close(),
          feed?.close(),
          retention?.stop(),
        ]);
        await drain(server, health, graceMs);
        // Only now: calls still draining may write, so until here the store counts this server
        // as running (rotate-master-key and copy-to-postgres wait for it).
        await presence.stop();
        await db.destroy();
      },
    };
  } catch (err) {
    await feed?.close();
    await presence.stop();
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

/** Stops taking calls and lets those in flight finish, for at most graceMs. */
async function drain(server: Server, health: HealthImplementation, graceMs: number): Promise<void> {
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
}
