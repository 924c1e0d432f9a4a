import { OperatorError } from '../../common/operator-error.js';
import type { Logger } from '../logger.js';
import { type Db, migrate, openSqlite } from './db.js';
import type { Dialect } from './migrations.js';
import { DEFAULT_POOL, isStoreUnavailable, openPostgres, type PoolSettings } from './postgres.js';

export interface StoreLocation {
  /** Where SQLite keeps its file (and, in development, master.key). */
  dataDir: string;
  /** postgres://...: the store is PostgreSQL instead. */
  databaseUrl?: string;
  /** The PostgreSQL pool's size and timeouts, over DEFAULT_POOL. */
  pool?: Partial<PoolSettings>;
}

/** Opens the store (SQLite in the data dir, or PostgreSQL) and applies its migrations. */
export async function openStore(
  where: StoreLocation,
  log: Logger,
): Promise<{ db: Db; dialect: Dialect }> {
  const dialect: Dialect = where.databaseUrl === undefined ? 'sqlite' : 'postgres';
  const db =
    where.databaseUrl === undefined
      ? openSqlite(where.dataDir)
      : openPostgres(where.databaseUrl, log, { ...DEFAULT_POOL, ...where.pool });
  try {
    await migrate(db, dialect);
  } catch (err) {
    await db.destroy();
    const cause = (err as { cause?: unknown }).cause ?? err;
    if (where.databaseUrl !== undefined && isStoreUnavailable(cause)) {
      throw new StoreUnreachable(where.databaseUrl);
    }
    const refused = where.databaseUrl === undefined ? undefined : refusal(where.databaseUrl, cause);
    if (refused !== undefined) throw new StoreRefused(refused);
    throw err;
  }
  return { db, dialect };
}

/** `the database at host:port`: host and port only, since the URL may carry a password. */
export function databaseAt(url: string): string {
  try {
    const u = new URL(url);
    return `the database at ${u.hostname}${u.port === '' ? '' : `:${u.port}`}`;
  } catch {
    // config.ts refuses URLs that do not parse; nothing more to say here.
    return 'the database';
  }
}

/** The database named by --database-url does not answer at start. */
export class StoreUnreachable extends OperatorError {
  constructor(url: string) {
    super(`${databaseAt(url)} cannot be reached: check --database-url and that PostgreSQL is up`);
  }
}

/** The database answered at start but cannot be used as --database-url says. */
export class StoreRefused extends OperatorError {}

/**
 * What an operator must fix when the database refused us at start (the login, the database
 * name, the rights, TLS, the URL), from PostgreSQL's error code; undefined for anything else.
 * Never the URL, which may carry a password.
 */
function refusal(url: string, cause: unknown): string | undefined {
  const e = (cause ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  const at = databaseAt(url);
  if (code === '28P01' || code === '28000') {
    return `${at} refused the login (${code}): check the user and password in --database-url`;
  }
  if (code === '3D000') {
    return `${at} has no such database (3D000): create it, or fix the name in --database-url`;
  }
  if (code === '42501') {
    return `${at} refused the user the rights runkeys needs (42501): let it create tables`;
  }
  if (/\bSSL\b|certificate/i.test(message)) {
    return (
      `TLS to ${at} failed: match sslmode in --database-url to the server, and give ` +
      'sslrootcert=PATH for verify-full'
    );
  }
  if (e.name === 'URIError' || message.includes('URI malformed')) {
    return '--database-url could not be parsed: check its % escapes';
  }
  return undefined;
}
