import { OperatorError } from '../common/operator-error.js';
import type { LimitSettings } from './limits.js';
import type { LogLevel } from './logger.js';
import type { RefreshSettings } from './oauth/refresh.js';
import type { PoolSettings } from './store/postgres.js';

/** Everything the server reads from flags and RUNKEYS_* variables, parsed once in main. */
export interface ServerConfig {
  listen: string;
  dataDir: string;
  tls?: { certPath: string; keyPath: string; clientCaPath?: string };
  initTokenFile?: string;
  logLevel: LogLevel;
  logPretty: boolean;
  /** Base64 of the 32-byte master key; undefined means the key file in the data dir. */
  masterKey?: string;
  /** postgres://...: the store is PostgreSQL, shared by every replica; else SQLite in dataDir. */
  databaseUrl?: string;
  /** HOST:PORT of the HTTP listener (OAuth callback, /healthz); undefined means none. */
  httpListen?: string;
  /** The redirect URI registered at providers; by default the listener's /oauth/callback. */
  oauthRedirectUri?: string;
  /** Rate and stream caps; see LimitSettings. */
  limits?: Partial<LimitSettings>;
  /** Refresh timing; see RefreshSettings. */
  refresh?: Partial<RefreshSettings>;
  /** Audit events older than this are deleted by a periodic sweep; undefined keeps them all. */
  auditRetentionMs?: number;
  /** PostgreSQL pool size and timeouts (only with databaseUrl); see PoolSettings. */
  pool?: Partial<PoolSettings>;
}

export const DEFAULT_LISTEN = '127.0.0.1:7443';
export const DEFAULT_DATA_DIR = './.runkeys';
export const DEFAULT_HTTP_LISTEN = '127.0.0.1:7444';

export class ConfigError extends OperatorError {}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;

/** A store in PostgreSQL is shared: its master key comes from the environment, never a file. */
export function requireMasterKeyWithDatabase(
  databaseUrl: string | undefined,
  masterKey: string | undefined,
): void {
  if (databaseUrl !== undefined && (masterKey === undefined || masterKey === '')) {
    throw new ConfigError(
      'with --database-url, set RUNKEYS_MASTER_KEY: every replica needs the same master key, ' +
        'and it must not live beside the data',
    );
  }
}

/** A postgres:// or postgresql:// URL, refused without repeating it (it may hold a password). */
export function checkDatabaseUrl(databaseUrl: string): void {
  let url: URL | undefined;
  try {
    url = new URL(databaseUrl);
  } catch {
    // Nothing of it goes into the message.
  }
  if (url === undefined || !['postgres:', 'postgresql:'].includes(url.protocol)) {
    throw new ConfigError('--database-url must be a postgres:// or postgresql:// URL');
  }
}

/** Plaintext gRPC is only for loopback; anything else needs TLS. */
export function checkListen(config: ServerConfig): void {
  if (!/^(\[[^\]]+\]|[^:]+):\d{1,5}$/.test(config.listen)) {
    throw new ConfigError(`--listen must be HOST:PORT; got ${JSON.stringify(config.listen)}`);
  }
  if (config.tls === undefined && !LOOPBACK.test(config.listen)) {
    throw new ConfigError(
      `--listen ${config.listen} is not a loopback address: give --tls-cert and --tls-key`,
    );
  }
  if (config.databaseUrl !== undefined) {
    checkDatabaseUrl(config.databaseUrl);
    requireMasterKeyWithDatabase(config.databaseUrl, config.masterKey);
  }
  if (config.httpListen !== undefined) {
    if (!/^(\[[^\]]+\]|[^:]+):\d{1,5}$/.test(config.httpListen)) {
      throw new ConfigError(
        `--http-listen must be HOST:PORT; got ${JSON.stringify(config.httpListen)}`,
      );
    }
    if (config.tls === undefined && !LOOPBACK.test(config.httpListen)) {
      throw new ConfigError(
        `--http-listen ${config.httpListen} is not a loopback address: give --tls-cert and ` +
          '--tls-key (the OAuth callback carries authorization codes)',
      );
    }
  }
  if (config.tls?.clientCaPath !== undefined && config.tls.certPath === '') {
    throw new ConfigError('--tls-client-ca needs --tls-cert and --tls-key');
  }
}
