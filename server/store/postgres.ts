import { Kysely, PostgresAdapter, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Db } from './db.js';
import type { Database } from './schema.js';

/** Columns of type bigint (epoch milliseconds, versions, counters) stay well below 2^53. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** The channel every replica listens on; the payload is the collection whose version moved. */
export const CHANGES_CHANNEL = 'runkeys_changes';

export interface PoolSettings {
  /** Connections per replica. */
  max: number;
  /** How long a query waits for a free connection before it fails (then UNAVAILABLE). */
  connectionTimeoutMs: number;
  /** A statement running longer than this is cancelled by the server. */
  statementTimeoutMs: number;
}

export const DEFAULT_POOL: PoolSettings = {
  max: 10,
  connectionTimeoutMs: 5_000,
  statementTimeoutMs: 15_000,
};

/**
 * Opens the store on PostgreSQL: the same Kysely schema, queries and migrations as SQLite. A
 * pool of connections, each with a statement timeout; a connection the server drops is
 * replaced on the next query, and a query that cannot get one in time fails (the gRPC layer
 * answers UNAVAILABLE, and nothing half-written is kept: every change is one transaction).
 */
export function openPostgres(url: string, log: Logger, settings = DEFAULT_POOL): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.statementTimeoutMs,
    application_name: 'runkeys',
  });
  // An idle connection the server drops emits here; the pool replaces it on demand.
  pool.on('error', (err) =>
    log.warn({ err: { message: err.message } }, 'database connection lost'),
  );
  // A connection that dies while checked out (inside a transaction, between two queries)
  // emits 'error' on the client itself, where the pool no longer listens: without this the
  // process would crash. Its queries fail on their own (UNAVAILABLE), and the pool drops the
  // broken client when it is released.
  pool.on('connect', (client) =>
    client.on('error', (err) =>
      log.debug({ err: { message: err.message } }, 'database connection lost while in use'),
    ),
  );
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export const isPostgres = (db: Db): boolean => db.getExecutor().adapter instanceof PostgresAdapter;

/** Error codes of a database that is down, restarting or unreachable. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  '57014', // query_canceled: --db-statement-timeout ran out
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300', // too_many_connections
  'SQLITE_BUSY',
]);

/** Whether a failure means the store cannot be reached right now (try again), not a bug. */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return (
    message.includes('Connection terminated') ||
    message.includes('timeout exceeded when trying to connect') ||
    message.includes('Client has encountered a connection error')
  );
}

/**
 * LISTEN on the changes channel with a connection of its own, so a change committed by any
 * replica wakes this one's watcher at once. A lost connection is made again with backoff, and
 * each (re)connection calls `onChange` too: the watcher then reads versions, which catches up
 * on whatever was notified while nobody listened.
 */
export class ChangeFeed {
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = 100;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'runkeys-feed' });
    client.on('notification', () => this.onChange());
    client.on('error', (err) => {
      this.log.warn({ err: { message: err.message } }, 'change feed connection lost');
      this.reconnect(client);
    });
    client.on('end', () => this.reconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
      this.client = client;
      this.retryMs = 100;
      this.onChange();
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'change feed cannot connect');
      this.reconnect(client);
    }
  }

  private reconnect(client: pg.Client): void {
    if (this.closed || this.timer !== undefined) return;
    if (this.client === client) this.client = undefined;
    client.removeAllListeners('end');
    void client.end().catch(() => {});
    const wait = this.retryMs * (0.5 + Math.random() / 2);
    this.retryMs = Math.min(this.retryMs * 2, 5_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, wait);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) {
      c.removeAllListeners('end');
      await c.end().catch(() => {});
    }
  }
}

/**
 * Tells every replica listening that something they follow changed (a collection's version, a
 * run's end). Inside a transaction PostgreSQL delivers it at commit, and not at all on
 * rollback. On SQLite there is nothing to send: processes sharing a store file find changes
 * by polling.
 */
export async function notifyChange(db: Db, what: string): Promise<void> {
  if (!isPostgres(db)) return;
  await sql`select pg_notify(${CHANGES_CHANNEL}, ${what})`.execute(db);
}
