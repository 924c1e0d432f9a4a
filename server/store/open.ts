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
    throw err;
  }
  return { db, dialect };
}

/** The database named by --database-url does not answer at start. */
export class StoreUnreachable extends OperatorError {
  constructor(url: string) {
    let where = 'the database';
    try {
      const u = new URL(url);
      // Host and port only: the URL may carry a password.
      where = `the database at ${u.hostname}${u.port === '' ? '' : `:${u.port}`}`;
    } catch {
      // config.ts refuses URLs that do not parse; nothing more to say here.
    }
    super(`${where} cannot be reached: check --database-url and that PostgreSQL is up`);
  }
}
