import { sql } from 'kysely';
import type { Db } from './db.js';
import type { AccountTable, ConnectFlowTable, OAuthClientTable } from './schema.js';

export const getOAuthClient = (
  db: Db,
  collection: string,
  name: string,
): Promise<OAuthClientTable | undefined> =>
  db
    .selectFrom('oauth_clients')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();

export const listOAuthClients = (
  db: Db,
  collection: string,
  after: string,
  limit: number,
): Promise<OAuthClientTable[]> =>
  db
    .selectFrom('oauth_clients')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '>', after)
    .orderBy('name')
    .limit(limit)
    .execute();

export async function insertOAuthClient(db: Db, row: OAuthClientTable): Promise<void> {
  await db.insertInto('oauth_clients').values(row).execute();
}

export async function replaceOAuthClient(db: Db, row: OAuthClientTable): Promise<void> {
  const { collection, name, created_at: _c, created_by: _b, ...rest } = row;
  await db
    .updateTable('oauth_clients')
    .set(rest)
    .where('collection', '=', collection)
    .where('name', '=', name)
    .execute();
}

export async function deleteOAuthClient(
  db: Db,
  collection: string,
  name: string,
): Promise<boolean> {
  const res = await db
    .deleteFrom('oauth_clients')
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function countAccountsOfClient(
  db: Db,
  collection: string,
  client: string,
): Promise<number> {
  const row = await db
    .selectFrom('accounts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('collection', '=', collection)
    .where('client', '=', client)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export const getAccount = (
  db: Db,
  collection: string,
  name: string,
): Promise<AccountTable | undefined> =>
  db
    .selectFrom('accounts')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();

export const listAccounts = (
  db: Db,
  collection: string,
  after: string,
  limit: number,
): Promise<AccountTable[]> =>
  db
    .selectFrom('accounts')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '>', after)
    .orderBy('name')
    .limit(limit)
    .execute();

export async function insertAccount(db: Db, row: AccountTable): Promise<void> {
  await db.insertInto('accounts').values(row).execute();
}

export async function deleteAccount(db: Db, collection: string, name: string): Promise<boolean> {
  const res = await db
    .deleteFrom('accounts')
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}

/** Fields a refresh, a connect or a status change writes. */
export type AccountPatch = Partial<
  Omit<AccountTable, 'collection' | 'name' | 'client' | 'created_at' | 'created_by' | 'fence'>
>;

export async function updateAccount(
  db: Db,
  collection: string,
  name: string,
  patch: AccountPatch,
): Promise<void> {
  await db
    .updateTable('accounts')
    .set(patch)
    .where('collection', '=', collection)
    .where('name', '=', name)
    .execute();
}

/**
 * Takes the refresh lease of an account when nobody holds it, or its holder's time ran out,
 * and bumps the fence, in one statement (no read-then-write race between processes). Returns
 * the fence now held and whether a holder's lease ran out without being released (a refresh
 * that never finished), or undefined when someone else holds it.
 */
export async function takeLease(
  db: Db,
  collection: string,
  name: string,
  owner: string,
  now: number,
  leaseMs: number,
): Promise<{ fence: number; interrupted: boolean } | undefined> {
  const row = await db
    .updateTable('accounts')
    .set({
      // SET expressions read the row as it was: a lease still named here was never released.
      lease_taken_over: sql<number>`case when lease_owner is null then 0 else 1 end`,
      lease_owner: owner,
      lease_until: now + leaseMs,
      fence: sql`fence + 1`,
    })
    .where('collection', '=', collection)
    .where('name', '=', name)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .returning(['fence', 'lease_taken_over'])
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return { fence: Number(row.fence), interrupted: Number(row.lease_taken_over) === 1 };
}

/**
 * Writes a refresh's outcome and releases the lease, only while the fence is still the one the
 * lease was taken with: a holder whose lease was taken over writes nothing. Returns whether it
 * wrote.
 */
export async function writeUnderFence(
  db: Db,
  collection: string,
  name: string,
  fence: number,
  patch: AccountPatch,
): Promise<boolean> {
  const res = await db
    .updateTable('accounts')
    .set({ ...patch, lease_owner: null, lease_until: null })
    .where('collection', '=', collection)
    .where('name', '=', name)
    .where('fence', '=', fence)
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/** What the sweep needs to decide which accounts to refresh; no token columns. */
export const listRefreshable = (db: Db) =>
  db
    .selectFrom('accounts')
    .select([
      'collection',
      'name',
      'access_expires_at',
      'lifetime_ms',
      'last_refresh_at',
      'created_at',
      'next_attempt_at',
      'failures',
    ])
    .where('refresh_token_set', '=', 1)
    .where('status', '!=', 'needs_reconnect')
    .execute();

export const listAllAccounts = (db: Db, collection: string): Promise<AccountTable[]> =>
  db.selectFrom('accounts').selectAll().where('collection', '=', collection).execute();

export async function insertFlow(db: Db, row: ConnectFlowTable): Promise<void> {
  await db.insertInto('connect_flows').values(row).execute();
}

export const getFlow = (
  db: Db,
  collection: string,
  id: string,
): Promise<ConnectFlowTable | undefined> =>
  db
    .selectFrom('connect_flows')
    .selectAll()
    .where('collection', '=', collection)
    .where('id', '=', id)
    .executeTakeFirst();

export const getFlowByState = (db: Db, stateHash: string): Promise<ConnectFlowTable | undefined> =>
  db.selectFrom('connect_flows').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();

/** Ends a pending flow; returns false when it was no longer pending (another path ended it). */
export async function finishFlow(
  db: Db,
  id: string,
  state: 'connected' | 'failed',
  error: string,
): Promise<boolean> {
  const res = await db
    .updateTable('connect_flows')
    .set({ state, error, state_hash: null })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

export async function setFlowInterval(db: Db, id: string, intervalS: number): Promise<void> {
  await db
    .updateTable('connect_flows')
    .set({ interval_s: intervalS })
    .where('id', '=', id)
    .execute();
}

/** Flows that ended or expired more than a day ago are of no more use. */
export async function pruneFlows(db: Db, before: number): Promise<void> {
  await db.deleteFrom('connect_flows').where('expires_at', '<', before).execute();
}

/**
 * Takes the poll lease of a pending device flow when it is free or has lapsed; true when this
 * owner holds it now. Of two replicas trying at once, one updates the row.
 */
export async function takeFlowPoll(
  db: Db,
  id: string,
  owner: string,
  now: number,
  until: number,
): Promise<boolean> {
  const res = await db
    .updateTable('connect_flows')
    .set({ poll_owner: owner, poll_until: until })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .where('method', '=', 'device')
    .where((eb) =>
      eb.or([
        eb('poll_until', 'is', null),
        eb('poll_until', '<=', now),
        eb('poll_owner', '=', owner),
      ]),
    )
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/** Extends this owner's lease; false when the flow ended or another process holds it. */
export async function renewFlowPoll(
  db: Db,
  id: string,
  owner: string,
  until: number,
): Promise<boolean> {
  const res = await db
    .updateTable('connect_flows')
    .set({ poll_until: until })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .where('poll_owner', '=', owner)
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/** Gives up this owner's leases (when it stops), so another process takes them at once. */
export async function releaseFlowPolls(db: Db, owner: string, id?: string): Promise<void> {
  let q = db
    .updateTable('connect_flows')
    .set({ poll_until: 0 })
    .where('poll_owner', '=', owner)
    .where('state', '=', 'pending');
  if (id !== undefined) q = q.where('id', '=', id);
  await q.execute();
}

/** Pending device flows nobody polls: never leased, or the lease lapsed. */
export function unpolledDeviceFlows(db: Db, now: number): Promise<ConnectFlowTable[]> {
  return db
    .selectFrom('connect_flows')
    .selectAll()
    .where('state', '=', 'pending')
    .where('method', '=', 'device')
    .where((eb) => eb.or([eb('poll_until', 'is', null), eb('poll_until', '<=', now)]))
    .execute();
}
