import type { Insertable, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Db } from './db.js';
import { prepared } from './prepared.js';
import type { AuditEventTable } from './schema.js';

export type NewAuditEvent = Insertable<AuditEventTable>;

export async function insertAuditEvent(
  db: Db,
  rows: NewAuditEvent | NewAuditEvent[],
): Promise<void> {
  await db.insertInto('audit_events').values(rows).execute();
}

type EventParams = Record<string, string | number>;

/** The event whose fields are the parameters named with `prefix`. */
const eventOf = (p: EventParams, prefix: string): NewAuditEvent => ({
  id: p[`${prefix}id`] as string,
  time: p[`${prefix}time`] as number,
  actor: p[`${prefix}actor`] as string,
  collection: p[`${prefix}collection`] as string,
  action: p[`${prefix}action`] as string,
  target: p[`${prefix}target`] as string,
  fingerprint: p[`${prefix}fingerprint`] as string,
  details: p[`${prefix}details`] as string,
});

const insertPairQuery = prepared((db, p: EventParams) =>
  db.insertInto('audit_events').values([eventOf(p, 'a_'), eventOf(p, 'b_')]),
);

const paramsOf = (e: NewAuditEvent, prefix: string): EventParams => ({
  [`${prefix}id`]: e.id,
  [`${prefix}time`]: e.time,
  [`${prefix}actor`]: e.actor,
  [`${prefix}collection`]: e.collection,
  [`${prefix}action`]: e.action,
  [`${prefix}target`]: e.target,
  [`${prefix}fingerprint`]: e.fingerprint,
  [`${prefix}details`]: e.details,
});

/** Two events in one statement compiled once: what every attach and resume records. */
export async function insertAuditEventPair(
  db: Db,
  a: NewAuditEvent,
  b: NewAuditEvent,
): Promise<void> {
  await insertPairQuery(db, { ...paramsOf(a, 'a_'), ...paramsOf(b, 'b_') });
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
