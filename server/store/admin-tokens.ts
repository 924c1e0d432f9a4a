import type { Db } from './db.js';
import type { AdminTokenTable } from './schema.js';

export const getAdminToken = (db: Db, id: string): Promise<AdminTokenTable | undefined> =>
  db.selectFrom('admin_tokens').selectAll().where('id', '=', id).executeTakeFirst();

export const listAdminTokens = (
  db: Db,
  collection: string | undefined,
  after: string,
  limit: number,
): Promise<AdminTokenTable[]> => {
  let q = db.selectFrom('admin_tokens').selectAll().where('id', '>', after);
  if (collection !== undefined) q = q.where('collection', '=', collection);
  return q.orderBy('id').limit(limit).execute();
};

export async function countRootTokens(db: Db): Promise<number> {
  const row = await db
    .selectFrom('admin_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'root')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertAdminToken(db: Db, row: AdminTokenTable): Promise<void> {
  await db.insertInto('admin_tokens').values(row).execute();
}

export async function updateAdminToken(
  db: Db,
  id: string,
  patch: Partial<Pick<AdminTokenTable, 'description' | 'last_used_at'>>,
): Promise<void> {
  await db.updateTable('admin_tokens').set(patch).where('id', '=', id).execute();
}

export async function deleteAdminToken(db: Db, id: string): Promise<boolean> {
  const res = await db.deleteFrom('admin_tokens').where('id', '=', id).executeTakeFirst();
  return res.numDeletedRows > 0n;
}
