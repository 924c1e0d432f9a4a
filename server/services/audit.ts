import type { Selectable } from 'kysely';
import type { AuditEvent, AuditServiceServer } from '../../proto/gen/runkeys/v1/admin.js';
import { authorize } from '../auth/principal.js';
import { invalid } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import { type AuditFilter, listAuditEvents } from '../store/audit.js';
import type { AuditEventTable } from '../store/schema.js';
import { quote, resourceName } from '../validate/common.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { type ServiceDeps, toDate } from './deps.js';

const ACTION = /^[a-z_]+(\.[a-z_]+)*\.?$/;

function toEvent(row: Selectable<AuditEventTable>): AuditEvent {
  return {
    id: row.id,
    time: toDate(row.time),
    actor: row.actor,
    collection: row.collection,
    action: row.action,
    target: row.target,
    fingerprint: row.fingerprint,
    details: JSON.parse(row.details) as Record<string, string>,
  };
}

export function auditHandlers(deps: ServiceDeps): Handlers<AuditServiceServer> {
  return {
    async listAuditEvents(req, { principal }) {
      const filter: AuditFilter = {};
      if (req.collection !== '') {
        filter.collection = resourceName('collection', req.collection);
        authorize(principal, filter.collection, 'read');
      } else if (principal.role !== 'root') {
        throw invalid('"collection" is required unless the caller holds a root token');
      }

      if (req.action !== '') {
        if (!ACTION.test(req.action)) {
          throw invalid(
            '"action" must be an action such as env_var.update, or a prefix such as env_var.; ' +
              `got ${quote(req.action)}`,
          );
        }
        if (req.action.endsWith('.')) filter.actionPrefix = req.action;
        else filter.action = req.action;
      }
      if (req.target !== '') filter.target = filterText('target', req.target);
      if (req.actor !== '') filter.actor = filterText('actor', req.actor);
      if (req.startTime !== undefined) filter.since = filterTime('start_time', req.startTime);
      if (req.endTime !== undefined) filter.until = filterTime('end_time', req.endTime);

      const scope = `audit:${JSON.stringify(filter)}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      if (page.after !== '') filter.beforeSeq = Number(page.after);
      const rows = await listAuditEvents(deps.db, filter, page.size);
      return {
        events: rows.map(toEvent),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => String(r.seq)),
        ),
      };
    },
  };
}

function filterText(field: string, value: string): string {
  if (value.length > 256 || value.includes('\0')) {
    throw invalid(`"${field}" must be at most 256 characters without NUL bytes`);
  }
  return value;
}

function filterTime(field: string, value: Date): number {
  const ms = value.getTime();
  if (!Number.isFinite(ms)) throw invalid(`"${field}" must be a time between years 0 and 9999`);
  return ms;
}
