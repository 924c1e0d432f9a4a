import type { Logger } from '../logger.js';
import { type Db, migrate, openSqlite } from './db.js';
import type { Dialect } from './migrations.js';
import { openPostgres } from './postgres.js';

export interface StoreLocation {
  /** Where SQLite keeps its file (and, in development, master.key). */
  dataDir: string;
  /** postgres://...: the store is PostgreSQL instead. */
  databaseUrl?: string;
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
      : openPostgres(where.databaseUrl, log);
  try {
    await migrate(db, dialect);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, dialect };
}
