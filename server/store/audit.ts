import type { Insertable, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Db } from './db.js';
import type { AuditEventTable } from './schema.js';

export type NewAuditEvent = Insertable<AuditEventTable>;

export async function insertAuditEvent(
  db: Db,
  rows: NewAuditEvent | NewAuditEvent[],
): Promise<void> {
  await db.insertInto('audit_events').values(rows).execute();
}

export interface AuditFilter {
  collection?: string;
  action?: string;
  actionPrefix?: string;
  target?: string;
  actor?: string;
  since?: number;
  until?: number;
  /** Only events older than this sequence number (pagination, newest first). */
  beforeSeq?: number;
}

export function listAuditEvents(
  db: Db,
  f: AuditFilter,
  limit: number,
): Promise<Selectable<AuditEventTable>[]> {
  let q = db.selectFrom('audit_events').selectAll();
  if (f.collection !== undefined) q = q.where('collection', '=', f.collection);
  if (f.action !== undefined) q = q.where('action', '=', f.action);
  if (f.actionPrefix !== undefined) {
    const prefix = f.actionPrefix;
    q = q.where(sql<string>`substr(action, 1, ${prefix.length})`, '=', prefix);
  }
  if (f.target !== undefined) q = q.where('target', '=', f.target);
  if (f.actor !== undefined) q = q.where('actor', '=', f.actor);
  if (f.since !== undefined) q = q.where('time', '>=', f.since);
  if (f.until !== undefined) q = q.where('time', '<', f.until);
  if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
  return q.orderBy('seq', 'desc').limit(limit).execute();
}

/**
 * Deletes up to `limit` of the oldest events recorded before `before` (epoch ms); returns how
 * many went. One statement, so a batch is deleted whole or not at all.
 */
export async function deleteAuditEventsBefore(
  db: Db,
  before: number,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('audit_events')
    .where('seq', 'in', (eb) =>
      eb
        .selectFrom('audit_events')
        .select('seq')
        .where('time', '<', before)
        .orderBy('seq')
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
