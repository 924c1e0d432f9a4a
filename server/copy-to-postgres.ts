import { existsSync } from 'node:fs';
import { type Insertable, type Kysely, sql } from 'kysely';
import { OperatorError } from '../common/operator-error.js';
import { requireMasterKeyWithDatabase } from './config.js';
import { newEventId } from './ids.js';
import { openKeyring } from './keys-at-start.js';
import type { Logger } from './logger.js';
import { runningServers } from './presence.js';
import { insertAuditEvent } from './store/audit.js';
import { type Db, sqlitePath } from './store/db.js';
import { databaseAt, openStore } from './store/open.js';
import type { Database } from './store/schema.js';

/** Every table that holds the store's data, parents before the tables that reference them. */
const TABLES = [
  'meta',
  'collections',
  'provider_keys',
  'env_vars',
  'oauth_clients',
  'accounts',
  'admin_tokens',
  'audit_events',
  'run_keys',
  'runs',
  'connect_flows',
  'bundle_contents',
  'run_receipts',
  'run_leaks',
] as const satisfies readonly (keyof Database)[];

type Table = (typeof TABLES)[number];

/** Rows read from SQLite, and inserted into PostgreSQL, per statement. */
const PAGE = 500;

export class CopyError extends OperatorError {}

export interface CopyResult {
  /** Rows copied, per table. */
  rows: Record<Table, number>;
}

/** Rows in a table of the target. */
async function rowCount(db: Kysely<Database>, table: Table): Promise<number> {
  const { rows } = await sql<{
    n: number;
  }>`select count(*)::int as n from ${sql.table(table)}`.execute(db);
  return rows[0]?.n ?? 0;
}

/**
 * Copies a SQLite store into an empty PostgreSQL database, for a deployment that outgrows one
 * process. Sealed values are copied as they are, so the replicas must start with the master
 * key that opens the SQLite store, given here as RUNKEYS_MASTER_KEY and checked against it.
 * 1. refuse without RUNKEYS_MASTER_KEY, while a server runs on the SQLite store, when the key
 *    does not open it, or when the target holds any data;
 * 2. one PostgreSQL transaction copies every table, in pages, and moves the audit sequence past
 *    the copied events; the row counts are compared before it commits;
 * 3. an audit event in the target records the copy.
 * The SQLite store is brought to this version's schema first, as a server start would, and is
 * otherwise only read.
 */
export async function copyToPostgres(
  from: { dataDir: string },
  to: { databaseUrl: string },
  masterKey: string | undefined,
  log: Logger,
): Promise<CopyResult> {
  // 1.
  requireMasterKeyWithDatabase(to.databaseUrl, masterKey);
  // openStore would make an empty store where there is none, and copy that.
  if (!existsSync(sqlitePath(from.dataDir))) {
    throw new CopyError(
      `no SQLite store in ${from.dataDir} (${sqlitePath(from.dataDir)} does not exist): ` +
        'give --data-dir of the store to copy',
    );
  }
  const source = (await openStore(from, log)).db;
  try {
    const running = await runningServers(source);
    if (running.length > 0) {
      throw new CopyError(
        `a control plane is running on the SQLite store: ${running.join('; ')}. Stop it ` +
          'first, or the copy misses what it writes next',
      );
    }
    // The same check value the replicas will test their key against.
    await openKeyring(source, from.dataDir, masterKey, log);
    const target = (await openStore({ dataDir: '', databaseUrl: to.databaseUrl }, log)).db;
    try {
      for (const table of TABLES) {
        const n = await rowCount(target, table);
        if (n > 0) {
          throw new CopyError(
            `${databaseAt(to.databaseUrl)} is not empty (${table} has ${n} rows): ` +
              'copy into a new database',
          );
        }
      }
      // 2.
      const rows = await target.transaction().execute(async (trx) => {
        const counts = {} as Record<Table, number>;
        for (const table of TABLES) counts[table] = await copyTable(source, trx, table);
        await sql`select setval(pg_get_serial_sequence('audit_events', 'seq'),
          (select coalesce(max(seq), 0) + 1 from audit_events), false)`.execute(trx);
        for (const table of TABLES) {
          const held = await rowCount(trx, table);
          if (held !== counts[table]) {
            throw new CopyError(
              `${table}: read ${counts[table]} rows but the target holds ${held}; ` +
                'nothing was copied',
            );
          }
        }
        // 3.
        await insertAuditEvent(trx, {
          id: newEventId(),
          time: Date.now(),
          actor: 'runkeys',
          collection: '',
          action: 'store.copy',
          target: '',
          fingerprint: '',
          // Audit details are a flat map of strings.
          details: JSON.stringify({
            from: 'sqlite',
            ...Object.fromEntries(TABLES.map((t) => [t, String(counts[t])])),
          }),
        });
        return counts;
      });
      log.info({ rows }, 'store copied to PostgreSQL');
      return { rows };
    } finally {
      await target.destroy();
    }
  } finally {
    await source.destroy();
  }
}

/** Copies one table in pages of PAGE rows, in SQLite's rowid order; returns the rows copied. */
async function copyTable(source: Db, target: Kysely<Database>, table: Table): Promise<number> {
  let copied = 0;
  let after = -1;
  for (;;) {
    const page = await source
      .selectFrom(table)
      .selectAll()
      .select(sql<number>`rowid`.as('__rowid'))
      .where(sql`rowid`, '>', after)
      .orderBy(sql`rowid`)
      .limit(PAGE)
      .execute();
    if (page.length === 0) return copied;
    after = page[page.length - 1]!.__rowid;
    const rows = page.map(({ __rowid: _, ...row }) => row);
    await target
      .insertInto(table)
      .values(rows as Insertable<Database[Table]>[])
      .execute();
    copied += rows.length;
  }
}
