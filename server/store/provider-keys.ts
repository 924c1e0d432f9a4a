import type { Db } from './db.js';
import type { ProviderKeyTable } from './schema.js';

export const getProviderKey = (
  db: Db,
  collection: string,
  provider: string,
): Promise<ProviderKeyTable | undefined> =>
  db
    .selectFrom('provider_keys')
    .selectAll()
    .where('collection', '=', collection)
    .where('provider', '=', provider)
    .executeTakeFirst();

export const listProviderKeys = (
  db: Db,
  collection: string,
  after: string,
  limit: number,
): Promise<ProviderKeyTable[]> =>
  db
    .selectFrom('provider_keys')
    .selectAll()
    .where('collection', '=', collection)
    .where('provider', '>', after)
    .orderBy('provider')
    .limit(limit)
    .execute();

export async function insertProviderKey(db: Db, row: ProviderKeyTable): Promise<void> {
  await db.insertInto('provider_keys').values(row).execute();
}

export async function replaceProviderKey(db: Db, row: ProviderKeyTable): Promise<void> {
  const { collection, provider, created_at: _c, created_by: _b, ...rest } = row;
  await db
    .updateTable('provider_keys')
    .set(rest)
    .where('collection', '=', collection)
    .where('provider', '=', provider)
    .execute();
}

export async function deleteProviderKey(
  db: Db,
  collection: string,
  provider: string,
): Promise<boolean> {
  const res = await db
    .deleteFrom('provider_keys')
    .where('collection', '=', collection)
    .where('provider', '=', provider)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}
