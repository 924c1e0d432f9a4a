import type { Db } from './db.js';
import type { EnvVarTable } from './schema.js';

export const getEnvVar = (
  db: Db,
  collection: string,
  name: string,
): Promise<EnvVarTable | undefined> =>
  db
    .selectFrom('env_vars')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();

export const listEnvVars = (
  db: Db,
  collection: string,
  after: string,
  limit: number,
): Promise<EnvVarTable[]> =>
  db
    .selectFrom('env_vars')
    .selectAll()
    .where('collection', '=', collection)
    .where('name', '>', after)
    .orderBy('name')
    .limit(limit)
    .execute();

export async function countEnvVars(db: Db, collection: string): Promise<number> {
  const row = await db
    .selectFrom('env_vars')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('collection', '=', collection)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertEnvVar(db: Db, row: EnvVarTable): Promise<void> {
  await db.insertInto('env_vars').values(row).execute();
}

export async function replaceEnvVar(db: Db, row: EnvVarTable): Promise<void> {
  const { collection, name, created_at: _c, created_by: _b, ...rest } = row;
  await db
    .updateTable('env_vars')
    .set(rest)
    .where('collection', '=', collection)
    .where('name', '=', name)
    .execute();
}

export async function deleteEnvVar(db: Db, collection: string, name: string): Promise<boolean> {
  const res = await db
    .deleteFrom('env_vars')
    .where('collection', '=', collection)
    .where('name', '=', name)
    .executeTakeFirst();
  return res.numDeletedRows > 0n;
}
