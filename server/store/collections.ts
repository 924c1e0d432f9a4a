import { sql, type Updateable } from 'kysely';
import { type Db, inBatches } from './db.js';
import { notifyChange } from './postgres.js';
import type { CollectionRow, CollectionTable, NewCollectionRow } from './schema.js';

export const getCollection = (db: Db, name: string): Promise<CollectionRow | undefined> =>
  db.selectFrom('collections').selectAll().where('name', '=', name).executeTakeFirst();

export const listCollections = (
  db: Db,
  after: string,
  limit: number,
  only?: string,
): Promise<CollectionRow[]> => {
  let q = db.selectFrom('collections').selectAll().where('name', '>', after);
  if (only !== undefined) q = q.where('name', '=', only);
  return q.orderBy('name').limit(limit).execute();
};

export const listAllCollections = (db: Db): Promise<CollectionRow[]> =>
  db.selectFrom('collections').selectAll().orderBy('name').execute();

export async function insertCollection(db: Db, row: NewCollectionRow): Promise<void> {
  await db.insertInto('collections').values(row).execute();
}

export async function updateCollection(
  db: Db,
  name: string,
  patch: Pick<
    Updateable<CollectionTable>,
    'description' | 'updated_at' | 'data_key_sealed' | 'max_offline_s'
  >,
): Promise<void> {
  await db.updateTable('collections').set(patch).where('name', '=', name).execute();
}

export async function deleteCollection(db: Db, name: string): Promise<boolean> {
  const res = await db.deleteFrom('collections').where('name', '=', name).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

/** Bumps the version agents follow; returns nothing, the new value is read back when needed. */
export async function bumpVersion(db: Db, name: string): Promise<void> {
  await db
    .updateTable('collections')
    .set({ version: sql`version + 1` })
    .where('name', '=', name)
    .execute();
  await notifyChange(db, name);
}

export function collectionVersions(db: Db, names: string[]): Promise<CollectionRow[]> {
  return inBatches(names, (slice) =>
    db.selectFrom('collections').selectAll().where('name', 'in', slice).execute(),
  );
}
