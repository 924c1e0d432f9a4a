import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { CodeMigrations, type Dialect } from './migrations.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

/** Values bound per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters. */
const IN_LIST_MAX = 2000;

/**
 * Runs `query` over `values` in slices that fit one statement's bound parameters, and returns
 * every slice's rows in order. A list of any length (one id per attached stream) then fits.
 */
export async function inBatches<V, R>(
  values: V[],
  query: (slice: V[]) => Promise<R[]>,
): Promise<R[]> {
  const rows: R[] = [];
  for (let i = 0; i < values.length; i += IN_LIST_MAX) {
    rows.push(...(await query(values.slice(i, i + IN_LIST_MAX))));
  }
  return rows;
}

export const sqlitePath = (dataDir: string): string => join(dataDir, 'runkeys.db');

/** Opens (creating when needed) the embedded SQLite store in WAL mode. */
export function openSqlite(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const sqlite = new SqliteDatabase(sqlitePath(dataDir));
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  // A checkpoint copies each page changed since the last one, once: the pages every attach
  // changes (the ends of the audit log and its indexes) are copied once per 10,000 WAL pages
  // instead of once per 1,000 (the default), which cost about a quarter of each commit. The
  // WAL grows to about 40 MiB between checkpoints.
  sqlite.pragma('wal_autocheckpoint = 10000');
  cacheStatements(sqlite);
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
}

/** Kysely prepares every query it runs; the same SQL text is prepared once and reused. */
const STATEMENT_CACHE_SIZE = 256;

function cacheStatements(sqlite: SqliteDatabase.Database): void {
  const prepare = sqlite.prepare.bind(sqlite);
  const cache = new Map<string, SqliteDatabase.Statement>();
  sqlite.prepare = ((source: string) => {
    let stmt = cache.get(source);
    if (stmt === undefined) {
      stmt = prepare(source);
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      cache.set(source, stmt);
    }
    return stmt;
  }) as typeof sqlite.prepare;
}

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/**
 * Applies the migrations not yet applied. Kysely's migrator takes a lock first (on PostgreSQL an
 * advisory lock), so replicas starting together apply each migration once.
 */
export async function migrate(db: Db, dialect: Dialect = 'sqlite'): Promise<void> {
  const migrator = new Migrator({ db, provider: new CodeMigrations(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed`, { cause: error });
  }
}
