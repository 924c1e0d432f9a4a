import type { Command } from 'commander';
import { parseDuration } from '../../agent/duration.js';
import {
  ConfigError,
  checkDatabaseUrl,
  DEFAULT_DATA_DIR,
  DEFAULT_HTTP_LISTEN,
  DEFAULT_LISTEN,
  type ServerConfig,
} from '../../server/config.js';
import type { LogLevel } from '../../server/logger.js';
import type { PoolSettings } from '../../server/store/postgres.js';
import type { CliIo } from '../context.js';

interface ServerOptions {
  listen?: string;
  dataDir?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  initTokenFile?: string;
  logLevel?: string;
  databaseUrl?: string;
  httpListen?: string;
  oauthRedirectUri?: string;
  refreshMinMargin?: string;
  adminWriteRate?: string;
  maxStreamsPerCollection?: string;
  auditRetention?: string;
  dbPoolSize?: string;
  dbAcquireTimeout?: string;
  dbStatementTimeout?: string;
}

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Flags win over RUNKEYS_* variables, which win over defaults. */
export function serverConfig(opts: ServerOptions, io: CliIo): ServerConfig {
  const env = io.env;
  const level = opts.logLevel ?? env.RUNKEYS_LOG_LEVEL ?? 'info';
  if (!(LEVELS as string[]).includes(level)) {
    throw new ConfigError(`--log-level must be one of ${LEVELS.join(', ')}`);
  }
  const certPath = opts.tlsCert ?? env.RUNKEYS_TLS_CERT;
  const keyPath = opts.tlsKey ?? env.RUNKEYS_TLS_KEY;
  const clientCaPath = opts.tlsClientCa ?? env.RUNKEYS_TLS_CLIENT_CA;
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together');
  }
  if (clientCaPath !== undefined && certPath === undefined) {
    throw new ConfigError('--tls-client-ca needs --tls-cert and --tls-key');
  }
  const httpListen = opts.httpListen ?? env.RUNKEYS_HTTP_LISTEN ?? DEFAULT_HTTP_LISTEN;
  const minMarginS = Number(opts.refreshMinMargin ?? env.RUNKEYS_REFRESH_MIN_MARGIN ?? '60');
  if (!Number.isInteger(minMarginS) || minMarginS < 0 || minMarginS > 86_400) {
    throw new ConfigError('--refresh-min-margin must be whole seconds from 0 to 86400');
  }
  const writeRate = Number(opts.adminWriteRate ?? env.RUNKEYS_ADMIN_WRITE_RATE ?? '50');
  if (!Number.isFinite(writeRate) || writeRate <= 0) {
    throw new ConfigError('--admin-write-rate must be a number of writes a second, above 0');
  }
  const maxStreams = Number(
    opts.maxStreamsPerCollection ?? env.RUNKEYS_MAX_STREAMS_PER_COLLECTION ?? '20000',
  );
  if (!Number.isInteger(maxStreams) || maxStreams < 1) {
    throw new ConfigError('--max-streams-per-collection must be a whole number, at least 1');
  }
  const databaseUrl = opts.databaseUrl ?? env.RUNKEYS_DATABASE_URL;
  return {
    listen: opts.listen ?? env.RUNKEYS_LISTEN ?? DEFAULT_LISTEN,
    dataDir: opts.dataDir ?? env.RUNKEYS_DATA_DIR ?? DEFAULT_DATA_DIR,
    tls:
      certPath === undefined || keyPath === undefined
        ? undefined
        : { certPath, keyPath, clientCaPath },
    initTokenFile: opts.initTokenFile ?? env.RUNKEYS_INIT_TOKEN_FILE,
    logLevel: level as LogLevel,
    logPretty:
      (io.stderr as NodeJS.WriteStream).isTTY === true && env.RUNKEYS_LOG_FORMAT !== 'json',
    masterKey: env.RUNKEYS_MASTER_KEY,
    databaseUrl,
    pool: poolConfig(opts, env, databaseUrl !== undefined),
    // An empty variable is unset; an empty flag is a mistake.
    auditRetentionMs: auditRetention(
      opts.auditRetention ?? (env.RUNKEYS_AUDIT_RETENTION || undefined),
    ),
    httpListen: httpListen === 'off' ? undefined : httpListen,
    oauthRedirectUri: opts.oauthRedirectUri ?? env.RUNKEYS_OAUTH_REDIRECT_URI,
    refresh: { minMarginMs: minMarginS * 1000 },
    limits: {
      adminWritesPerSecond: writeRate,
      adminWriteBurst: Math.max(1, Math.ceil(writeRate * 4)),
      streamsPerCollection: maxStreams,
    },
  };
}

const DAY_MS = 24 * 3600_000;
/** Shortest --audit-retention: a day, so a slip of the unit cannot empty the audit log. */
const MIN_AUDIT_RETENTION_MS = DAY_MS;
/** Longest: a hundred years, far past any retention rule, far below what a date can hold. */
const MAX_AUDIT_RETENTION_MS = 36_500 * DAY_MS;

/** `--audit-retention`: days (`90d`) or a duration (`2160h`); undefined keeps every event. */
function auditRetention(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const days = /^(\d+)d$/.exec(text);
  const ms = days !== null ? Number(days[1]) * DAY_MS : parseDuration(text);
  if (ms === undefined || ms < MIN_AUDIT_RETENTION_MS || ms > MAX_AUDIT_RETENTION_MS) {
    throw new ConfigError(
      '--audit-retention must be from a day to 36500 days, in days (90d) or hours (2160h); ' +
        `got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

/** The PostgreSQL pool flags; each refused, by name, without --database-url. */
function poolConfig(
  opts: ServerOptions,
  env: NodeJS.ProcessEnv,
  withDatabase: boolean,
): Partial<PoolSettings> {
  const pool: Partial<PoolSettings> = {};
  const given = (flag: string, value: string | undefined): value is string => {
    if (value === undefined) return false;
    if (!withDatabase) {
      throw new ConfigError(`${flag} applies only with --database-url (PostgreSQL)`);
    }
    return true;
  };
  const size = opts.dbPoolSize ?? env.RUNKEYS_DB_POOL_SIZE;
  if (given('--db-pool-size', size)) {
    const n = /^\d+$/.test(size) ? Number(size) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      throw new ConfigError('--db-pool-size must be a whole number of connections, 1 to 1000');
    }
    pool.max = n;
  }
  const seconds = (flag: string, value: string): number => {
    const s = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isFinite(s) || s <= 0 || s > 3600) {
      throw new ConfigError(`${flag} must be seconds, above 0 and at most 3600 (e.g. 0.5 or 30)`);
    }
    return Math.max(1, Math.round(s * 1000));
  };
  const acquire = opts.dbAcquireTimeout ?? env.RUNKEYS_DB_ACQUIRE_TIMEOUT;
  if (given('--db-acquire-timeout', acquire)) {
    pool.connectionTimeoutMs = seconds('--db-acquire-timeout', acquire);
  }
  const statement = opts.dbStatementTimeout ?? env.RUNKEYS_DB_STATEMENT_TIMEOUT;
  if (given('--db-statement-timeout', statement)) {
    pool.statementTimeoutMs = seconds('--db-statement-timeout', statement);
  }
  return pool;
}

/**
 * `server` and its subcommands all take --data-dir, and commander hands the flag to `server`
 * wherever it stands on the line, so a subcommand reads it from there.
 */
function storeOf(c: Command, io: CliIo): { dataDir: string; databaseUrl?: string } {
  const { dataDir, databaseUrl } = c.optsWithGlobals<{ dataDir?: string; databaseUrl?: string }>();
  return {
    dataDir: dataDir ?? io.env.RUNKEYS_DATA_DIR ?? DEFAULT_DATA_DIR,
    databaseUrl: databaseUrl ?? io.env.RUNKEYS_DATABASE_URL,
  };
}

export function registerServer(program: Command, io: CliIo): void {
  const cmd = program
    .command('server')
    .description('run the control plane')
    .option('--listen <host:port>', `gRPC address (default ${DEFAULT_LISTEN})`)
    .option('--data-dir <path>', `where the SQLite store lives (default ${DEFAULT_DATA_DIR})`)
    .option(
      '--database-url <url>',
      'postgres://... : keep the store in PostgreSQL, shared by every replica ' +
        '(needs RUNKEYS_MASTER_KEY)',
    )
    .option('--tls-cert <path>', 'PEM certificate chain for TLS')
    .option('--tls-key <path>', 'PEM private key for TLS')
    .option('--tls-client-ca <path>', 'PEM CA bundle: require client certificates (mutual TLS)')
    .option('--init-token-file <path>', 'on first start, write the root token here (0600)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option(
      '--http-listen <host:port>',
      `HTTP address for the OAuth callback and /healthz, or "off" (default ${DEFAULT_HTTP_LISTEN})`,
    )
    .option(
      '--oauth-redirect-uri <url>',
      "the redirect URI registered at providers (default: the listener's /oauth/callback)",
    )
    .option(
      '--admin-write-rate <n>',
      'admin writes a second allowed per token, with bursts of 4 seconds (default 50)',
    )
    .option(
      '--max-streams-per-collection <n>',
      'agent streams one collection may hold open on this replica (default 20000)',
    )
    .option(
      '--audit-retention <duration>',
      'delete audit events older than this, e.g. 90d or 2160h, 1d to 36500d (default: keep all)',
    )
    .option(
      '--db-pool-size <n>',
      'with --database-url: connections this replica keeps to PostgreSQL (default 10)',
    )
    .option(
      '--db-acquire-timeout <seconds>',
      'with --database-url: how long a call waits for a free connection (default 5)',
    )
    .option(
      '--db-statement-timeout <seconds>',
      'with --database-url: PostgreSQL cancels a statement running longer (default 15)',
    )
    .option(
      '--refresh-min-margin <seconds>',
      'refresh OAuth tokens at least this long before expiry (default 60)',
    )
    .action(async (opts: ServerOptions) => {
      const config = serverConfig(opts, io);
      // Server code loads only for server commands, so client commands start fast.
      const { createLogger } = await import('../../server/logger.js');
      const { startServer } = await import('../../server/app.js');
      const log = createLogger({ level: config.logLevel, pretty: config.logPretty });
      const running = await startServer(config, log, { stderr: io.stderr });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'shutting down');
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          running.close().then(resolve, resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      log.info('stopped');
      log.flush();
    });

  cmd
    .command('rotate-master-key')
    .description(
      're-seal every collection key under a new master key (stop the servers first); the new ' +
        'key comes from RUNKEYS_NEW_MASTER_KEY, or is made when the key lives in master.key',
    )
    .option('--data-dir <path>', `the store (default ${DEFAULT_DATA_DIR})`)
    .action(async (_opts: object, c: Command) => {
      const where = storeOf(c, io);
      const { createLogger } = await import('../../server/logger.js');
      const { rotateMasterKey } = await import('../../server/rotate-master-key.js');
      const log = createLogger({ level: 'warn', pretty: false });
      const res = await rotateMasterKey(
        where,
        { current: io.env.RUNKEYS_MASTER_KEY, next: io.env.RUNKEYS_NEW_MASTER_KEY },
        log,
      );
      const next =
        res.newKeySource === 'file'
          ? 'the new key is in master.key'
          : 'start the servers with RUNKEYS_MASTER_KEY set to the new key';
      io.stderr.write(`re-sealed ${res.collections} collection key(s); ${next}\n`);
    });

  cmd
    .command('copy-to-postgres')
    .description(
      'copy the SQLite store in --data-dir into the empty PostgreSQL database of ' +
        '--database-url (stop the server first; needs RUNKEYS_MASTER_KEY, the key of the store)',
    )
    .option('--data-dir <path>', `the SQLite store (default ${DEFAULT_DATA_DIR})`)
    .option('--database-url <url>', 'postgres://... : the empty database to copy into')
    .action(async (_opts: object, c: Command) => {
      const { dataDir, databaseUrl } = storeOf(c, io);
      if (databaseUrl === undefined) {
        throw new ConfigError('copy-to-postgres needs --database-url (or RUNKEYS_DATABASE_URL)');
      }
      checkDatabaseUrl(databaseUrl);
      const { createLogger } = await import('../../server/logger.js');
      const { copyToPostgres } = await import('../../server/copy-to-postgres.js');
      const log = createLogger({ level: 'warn', pretty: false });
      const { rows } = await copyToPostgres(
        { dataDir },
        { databaseUrl },
        io.env.RUNKEYS_MASTER_KEY,
        log,
      );
      const total = Object.values(rows).reduce((a, b) => a + b, 0);
      io.stderr.write(
        `copied ${total} row(s) (${rows.collections} collection(s), ${rows.runs} run(s), ` +
          `${rows.audit_events} audit event(s)); start the replicas on --database-url with ` +
          'this RUNKEYS_MASTER_KEY\n',
      );
    });

  cmd
    .command('rotate-run-key')
    .description(
      'make a new control-plane key for new runs; ' +
        'runs going on keep the key they were created with',
    )
    .option('--data-dir <path>', `the store (default ${DEFAULT_DATA_DIR})`)
    .action(async (_opts: object, c: Command) => {
      const where = storeOf(c, io);
      const { createLogger } = await import('../../server/logger.js');
      const { rotateRunKey } = await import('../../server/rotate-run-key.js');
      const log = createLogger({ level: 'warn', pretty: false });
      const key = await rotateRunKey(where, io.env.RUNKEYS_MASTER_KEY, log);
      io.stderr.write(`new runs use run key ${key.id}\n`);
    });
}
