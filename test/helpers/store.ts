import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** The SQLite files of a data dir: the database, its write-ahead log and shared memory. */
export const DB_FILES = ['runkeys.db', 'runkeys.db-wal', 'runkeys.db-shm'] as const;

const dbPath = (dataDir: string): string => join(dataDir, 'runkeys.db');

/** Opens the store read-only, beside a server that may still hold it open. */
export function openStoreReadOnly(dataDir: string): Database.Database {
  return new Database(dbPath(dataDir), { readonly: true, fileMustExist: true });
}

export type StoreSnapshot = Record<string, unknown[]>;

/**
 * Every row of every table (audit events included), in a fixed order; not server_presence, the
 * running server's heartbeat, which changes on its own every few seconds.
 */
export function snapshotStore(dataDir: string): StoreSnapshot {
  const db = openStoreReadOnly(dataDir);
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
          "AND name != 'server_presence'",
      )
      .pluck()
      .all() as string[];
    const out: StoreSnapshot = {};
    for (const table of tables.sort()) {
      const width = db.prepare(`SELECT * FROM "${table}" LIMIT 0`).columns().length;
      const order = Array.from({ length: width }, (_, i) => i + 1).join(', ');
      out[table] = db.prepare(`SELECT * FROM "${table}" ORDER BY ${order}`).all();
    }
    return out;
  } finally {
    db.close();
  }
}

/** The bytes of each SQLite file that exists right now. */
export function readDbFiles(dataDir: string): { file: string; bytes: Buffer }[] {
  return DB_FILES.map((file) => join(dataDir, file))
    .filter((path) => existsSync(path))
    .map((path) => ({ file: path, bytes: readFileSync(path) }));
}

/** Moves the write-ahead log into the database file and empties it. */
export function checkpoint(dataDir: string): void {
  const db = new Database(dbPath(dataDir), { fileMustExist: true });
  try {
    const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    if (result?.busy !== 0) throw new Error('the WAL checkpoint was blocked by a reader');
  } finally {
    db.close();
  }
}
