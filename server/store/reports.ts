import { sql } from 'kysely';
import type { Db } from './db.js';
import type { BundleContentsTable, RunLeakTable, RunReceiptTable } from './schema.js';

export async function insertBundleContents(db: Db, row: BundleContentsTable): Promise<void> {
  await db
    .insertInto('bundle_contents')
    .values(row)
    .onConflict((oc) => oc.columns(['collection', 'digest']).doNothing())
    .execute();
}

export function bundleContents(
  db: Db,
  collection: string,
  digests?: readonly string[],
): Promise<BundleContentsTable[]> {
  let q = db.selectFrom('bundle_contents').selectAll().where('collection', '=', collection);
  if (digests !== undefined) {
    if (digests.length === 0) return Promise.resolve([]);
    q = q.where('digest', 'in', [...digests]);
  }
  return q.execute();
}

/**
 * Takes report number `sequence` of a run: true when it is the next one, false when the run
 * already took it (or a later one), so a retried report is not counted twice.
 */
export async function advanceReportSequence(
  db: Db,
  runId: string,
  sequence: number,
): Promise<boolean> {
  const res = await db
    .updateTable('runs')
    .set({ report_seq: sequence })
    .where('id', '=', runId)
    .where('report_seq', '<', sequence)
    .executeTakeFirst();
  return res.numUpdatedRows === 1n;
}

/** Records receipts; one the run already gave for a version is kept as it was. */
export async function insertReceipts(db: Db, rows: RunReceiptTable[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('run_receipts')
    .values(rows)
    .onConflict((oc) => oc.columns(['run_id', 'version']).doNothing())
    .execute();
  const newest = Math.max(...rows.map((r) => r.version));
  await db
    .updateTable('runs')
    .set({ applied_version: newest })
    .where('id', '=', rows[0]!.run_id)
    .where('applied_version', '<', newest)
    .execute();
}

/** Adds leak counts; returns the keys (name, stream, fingerprint) seen for the first time. */
export async function addLeaks(db: Db, rows: RunLeakTable[]): Promise<RunLeakTable[]> {
  if (rows.length === 0) return [];
  const known = await db
    .selectFrom('run_leaks')
    .select(['name', 'stream', 'fingerprint'])
    .where('run_id', '=', rows[0]!.run_id)
    .execute();
  const seen = new Set(known.map((k) => leakKey(k)));
  await db
    .insertInto('run_leaks')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['run_id', 'name', 'stream', 'fingerprint']).doUpdateSet({
        count: sql`run_leaks.count + excluded.count`,
        last_at: sql`excluded.last_at`,
      }),
    )
    .execute();
  return rows.filter((r) => !seen.has(leakKey(r)));
}

const leakKey = (k: { name: string; stream: string; fingerprint: string }) =>
  `${k.name}\0${k.stream}\0${k.fingerprint}`;

export function listLeaks(db: Db, runId: string): Promise<RunLeakTable[]> {
  return db
    .selectFrom('run_leaks')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('name')
    .orderBy('stream')
    .orderBy('fingerprint')
    .execute();
}

export interface ReceiptFilter {
  collection: string;
  runId?: string;
  version?: number;
  digests?: readonly string[];
  /** Receipts strictly after this one in the order (received_at, run_id, version) descending. */
  before?: { receivedAt: number; runId: string; version: number };
}

export function listReceipts(db: Db, f: ReceiptFilter, limit: number): Promise<RunReceiptTable[]> {
  let q = db.selectFrom('run_receipts').selectAll().where('collection', '=', f.collection);
  if (f.runId !== undefined) q = q.where('run_id', '=', f.runId);
  if (f.version !== undefined) q = q.where('version', '=', f.version);
  if (f.digests !== undefined) {
    if (f.digests.length === 0) return Promise.resolve([]);
    q = q.where('digest', 'in', [...f.digests]);
  }
  const b = f.before;
  if (b !== undefined) {
    q = q.where((eb) =>
      eb(
        eb.refTuple('received_at', 'run_id', 'version'),
        '<',
        eb.tuple(b.receivedAt, b.runId, b.version),
      ),
    );
  }
  return q
    .orderBy('received_at', 'desc')
    .orderBy('run_id', 'desc')
    .orderBy('version', 'desc')
    .limit(limit)
    .execute();
}
