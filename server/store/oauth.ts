import type { Db } from './db.js';
import type { AccountTable, OAuthClientTable } from './schema.js';

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
