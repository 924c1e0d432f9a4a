import type { Db } from './db.js';
import type { CollectionTable } from './schema.js';

export const getCollection = (db: Db, name: string): Promise<CollectionTable | undefined> =>
  db.selectFrom('collections').selectAll().where('name', '=', name).executeTakeFirst();

export const listCollections = (
  db: Db,
  after: string,
  limit: number,
  only?: string,
): Promise<CollectionTable[]> => {
  let q = db.selectFrom('collections').selectAll().where('name', '>', after);
  if (only !== undefined) q = q.where('name', '=', only);
  return q.orderBy('name').limit(limit).execute();
};

export const listAllCollections = (db: Db): Promise<CollectionTable[]> =>
  db.selectFrom('collections').selectAll().orderBy('name').execute();

export async function insertCollection(db: Db, row: CollectionTable): Promise<void> {
  await db.insertInto('collections').values(row).execute();
}

export async function updateCollection(
  db: Db,
  name: string,
  patch: Partial<Pick<CollectionTable, 'description' | 'updated_at' | 'data_key_sealed'>>,
): Promise<void> {
  await db.updateTable('collections').set(patch).where('name', '=', name).execute();
}

export async function deleteCollection(db: Db, name: string): Promise<boolean> {
  const res = await db.deleteFrom('collections').where('name', '=', name).executeTakeFirst();
  return res.numDeletedRows > 0n;
}
