import { type Db, inBatches } from './db.js';
import { notifyChange } from './postgres.js';
import type { RunKeyTable, RunState, RunTable } from './schema.js';

export const getRun = (db: Db, id: string): Promise<RunTable | undefined> =>
  db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();

export function listRuns(
  db: Db,
  collection: string,
  state: RunState | undefined,
  after: string,
  limit: number,
): Promise<RunTable[]> {
  let q = db
    .selectFrom('runs')
    .selectAll()
    .where('collection', '=', collection)
    .where('id', '>', after);
  if (state !== undefined) q = q.where('state', '=', state);
  return q.orderBy('id').limit(limit).execute();
}

export async function insertRun(db: Db, row: RunTable): Promise<void> {
  await db.insertInto('runs').values(row).execute();
}

/**
 * Binds a pending run to an agent key, consuming the bootstrap verifier. The WHERE clause makes
 * it single use: of two concurrent attaches only one updates a row.
 */
export async function claimBootstrap(
  db: Db,
  id: string,
  verifier: string,
  patch: Pick<
    RunTable,
    'agent_public_key' | 'attached_at' | 'resume_verifier' | 'delivered_version'
  >,
): Promise<boolean> {
  const res = await db
    .updateTable('runs')
    .set({ ...patch, state: 'attached', bootstrap_verifier: null, resume_prev_verifier: null })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .where('bootstrap_verifier', '=', verifier)
    .executeTakeFirst();
  return res.numUpdatedRows === 1n;
}

/** Rotates the resume credential; only when the verifier used is still current or previous. */
export async function rotateResume(
  db: Db,
  id: string,
  used: string,
  next: string,
  keepPrevious: string,
  deliveredVersion: number,
): Promise<boolean> {
  const res = await db
    .updateTable('runs')
    .set({
      resume_verifier: next,
      resume_prev_verifier: keepPrevious,
      delivered_version: deliveredVersion,
    })
    .where('id', '=', id)
    .where('state', '=', 'attached')
    .where((eb) => eb.or([eb('resume_verifier', '=', used), eb('resume_prev_verifier', '=', used)]))
    .executeTakeFirst();
  return res.numUpdatedRows === 1n;
}

/**
 * Ends a run that has not ended yet; returns false when it already had. Resume verifiers stay,
 * so an agent that proves itself afterwards is told the run ended rather than refused.
 */
export async function finishRun(
  db: Db,
  id: string,
  state: 'ended' | 'expired',
  at: number,
): Promise<boolean> {
  const res = await db
    .updateTable('runs')
    .set({
      state,
      ended_at: at,
      end_reason: state,
      bootstrap_verifier: null,
    })
    .where('id', '=', id)
    .where('state', 'in', ['pending', 'attached'])
    .executeTakeFirst();
  if (res.numUpdatedRows !== 1n) return false;
  await notifyChange(db, id);
  return true;
}

export async function setDeliveredVersion(db: Db, id: string, version: number): Promise<void> {
  await db.updateTable('runs').set({ delivered_version: version }).where('id', '=', id).execute();
}

export async function setDeliveredVersions(db: Db, ids: string[], version: number): Promise<void> {
  await inBatches(ids, (slice) =>
    db.updateTable('runs').set({ delivered_version: version }).where('id', 'in', slice).execute(),
  );
}

/** The states of the runs that have ended or expired among `ids`. */
export function endedRuns(db: Db, ids: string[]): Promise<{ id: string; state: RunState }[]> {
  return inBatches(ids, (slice) =>
    db
      .selectFrom('runs')
      .select(['id', 'state'])
      .where('id', 'in', slice)
      .where('state', 'in', ['ended', 'expired'])
      .execute(),
  );
}

export const currentRunKey = (db: Db): Promise<RunKeyTable | undefined> =>
  db
    .selectFrom('run_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('created_at', 'desc')
    .executeTakeFirst();

export const getRunKey = (db: Db, id: string): Promise<RunKeyTable | undefined> =>
  db.selectFrom('run_keys').selectAll().where('id', '=', id).executeTakeFirst();

export const listRunKeys = (db: Db): Promise<RunKeyTable[]> =>
  db.selectFrom('run_keys').selectAll().execute();

export async function insertRunKey(db: Db, row: RunKeyTable): Promise<void> {
  await db.insertInto('run_keys').values(row).execute();
}

export async function retireRunKeys(db: Db, at: number): Promise<void> {
  await db
    .updateTable('run_keys')
    .set({ retired_at: at })
    .where('retired_at', 'is', null)
    .execute();
}

export async function updateRunKeySeal(db: Db, id: string, sealed: string): Promise<void> {
  await db.updateTable('run_keys').set({ secret_sealed: sealed }).where('id', '=', id).execute();
}
