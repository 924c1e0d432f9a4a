import { type Db, inBatches } from './db.js';
import { notifyChange } from './postgres.js';
import { prepared } from './prepared.js';
import type { CollectionRow, RunKeyTable, RunState, RunTable } from './schema.js';

export const getRun = (db: Db, id: string): Promise<RunTable | undefined> =>
  db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();

/** A run and its collection's row, in one read (an attach needs both). */
export async function getRunWithCollection(
  db: Db,
  id: string,
): Promise<{ run: RunTable; collection: CollectionRow } | undefined> {
  const row = (await runWithCollectionQuery(db, { id })).rows[0];
  if (row === undefined) return undefined;
  const {
    c_description,
    c_data_key_sealed,
    c_version,
    c_created_at,
    c_updated_at,
    c_created_by,
    c_max_offline_s,
    ...run
  } = row;
  const collection: CollectionRow = {
    name: run.collection,
    description: c_description,
    data_key_sealed: c_data_key_sealed,
    version: c_version,
    created_at: c_created_at,
    updated_at: c_updated_at,
    created_by: c_created_by,
    max_offline_s: c_max_offline_s,
  };
  return { run, collection };
}

const runWithCollectionQuery = prepared((db, p: { id: string }) =>
  db
    .selectFrom('runs')
    .innerJoin('collections', 'collections.name', 'runs.collection')
    .selectAll('runs')
    .select([
      'collections.description as c_description',
      'collections.data_key_sealed as c_data_key_sealed',
      'collections.version as c_version',
      'collections.created_at as c_created_at',
      'collections.updated_at as c_updated_at',
      'collections.created_by as c_created_by',
      'collections.max_offline_s as c_max_offline_s',
    ])
    .where('runs.id', '=', p.id),
);

/**
 * A collection's runs by id. `state` filters on the state a run reads as at `now`: a pending or
 * attached run whose TTL ran out is expired, even before anything marked it so.
 */
export function listRuns(
  db: Db,
  collection: string,
  state: RunState | undefined,
  after: string,
  limit: number,
  now: number,
): Promise<RunTable[]> {
  let q = db
    .selectFrom('runs')
    .selectAll()
    .where('collection', '=', collection)
    .where('id', '>', after);
  if (state === 'pending' || state === 'attached') {
    q = q.where('state', '=', state).where('expires_at', '>', now);
  } else if (state === 'expired') {
    q = q.where((eb) =>
      eb.or([
        eb('state', '=', 'expired'),
        eb.and([eb('state', 'in', ['pending', 'attached']), eb('expires_at', '<=', now)]),
      ]),
    );
  } else if (state !== undefined) {
    q = q.where('state', '=', state);
  }
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
  const res = await claimBootstrapQuery(db, { id, verifier, ...patch });
  return res.numAffectedRows === 1n;
}

const claimBootstrapQuery = prepared(
  (
    db,
    p: { id: string; verifier: string } & Pick<
      RunTable,
      'agent_public_key' | 'attached_at' | 'resume_verifier' | 'delivered_version'
    >,
  ) =>
    db
      .updateTable('runs')
      .set({
        agent_public_key: p.agent_public_key,
        attached_at: p.attached_at,
        resume_verifier: p.resume_verifier,
        delivered_version: p.delivered_version,
        state: 'attached',
        bootstrap_verifier: null,
        resume_prev_verifier: null,
      })
      .where('id', '=', p.id)
      .where('state', '=', 'pending')
      .where('bootstrap_verifier', '=', p.verifier),
);

/** Rotates the resume credential; only when the verifier used is still current or previous. */
export async function rotateResume(
  db: Db,
  id: string,
  used: string,
  next: string,
  keepPrevious: string,
  deliveredVersion: number,
): Promise<boolean> {
  const res = await rotateResumeQuery(db, { id, used, next, keepPrevious, deliveredVersion });
  return res.numAffectedRows === 1n;
}

const rotateResumeQuery = prepared(
  (
    db,
    p: { id: string; used: string; next: string; keepPrevious: string; deliveredVersion: number },
  ) =>
    db
      .updateTable('runs')
      .set({
        resume_verifier: p.next,
        resume_prev_verifier: p.keepPrevious,
        delivered_version: p.deliveredVersion,
      })
      .where('id', '=', p.id)
      .where('state', '=', 'attached')
      .where((eb) =>
        eb.or([eb('resume_verifier', '=', p.used), eb('resume_prev_verifier', '=', p.used)]),
      ),
);

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
