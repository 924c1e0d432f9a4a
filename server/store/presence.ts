import type { Selectable } from 'kysely';
import type { Db } from './db.js';
import type { ServerPresenceTable } from './schema.js';

export async function insertPresence(db: Db, row: ServerPresenceTable): Promise<void> {
  await db.insertInto('server_presence').values(row).execute();
}

export async function touchPresence(db: Db, id: string, seenAt: number): Promise<void> {
  await db.updateTable('server_presence').set({ seen_at: seenAt }).where('id', '=', id).execute();
}

export async function deletePresence(db: Db, id: string): Promise<void> {
  await db.deleteFrom('server_presence').where('id', '=', id).execute();
}

/** The servers whose heartbeat is newer than `since`, most recent first. */
export function presentSince(db: Db, since: number): Promise<Selectable<ServerPresenceTable>[]> {
  return db
    .selectFrom('server_presence')
    .selectAll()
    .where('seen_at', '>', since)
    .orderBy('seen_at', 'desc')
    .execute();
}

/** Forgets the heartbeats older than `before` (servers that stopped without saying so). */
export async function deleteStalePresence(db: Db, before: number): Promise<void> {
  await db.deleteFrom('server_presence').where('seen_at', '<=', before).execute();
}
