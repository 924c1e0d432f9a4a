import type { Command } from 'commander';
import { type AuditEvent, AuditServiceClient } from '../../proto/gen/runkeys/v1/admin.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson, printTable } from '../context.js';
import { UsageError } from '../errors.js';

interface AuditOptions {
  collection?: string;
  action?: string;
  target?: string;
  actor?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
}

const eventJson = (e: AuditEvent) => ({
  id: e.id,
  time: isoTime(e.time),
  actor: e.actor,
  collection: e.collection,
  action: e.action,
  target: e.target,
  fingerprint: e.fingerprint,
  details: e.details,
});

function time(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} must be an ISO 8601 time`);
  return d;
}

export function registerAudit(program: Command, io: CliIo): void {
  program
    .command('audit')
    .description('list audit events, newest first')
    .option('--collection <name>', 'collection (required unless root)')
    .option('--action <action>', 'exact action (env_var.update) or prefix (env_var.)')
    .option('--target <name>', 'what was acted on')
    .option('--actor <token-id>', 'who acted')
    .option('--since <time>', 'ISO 8601 time, inclusive')
    .option('--until <time>', 'ISO 8601 time, exclusive')
    .option('--limit <n>', 'at most this many events', '100')
    .option('--json', 'print JSON')
    .action(async (opts: AuditOptions, c: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be >= 1');
      const conn = adminConnection(c, io);
      const api = makeClient(AuditServiceClient, conn);
      const events: AuditEvent[] = [];
      let pageToken = '';
      do {
        const res = await unary(conn, api.listAuditEvents.bind(api), {
          collection: opts.collection ?? '',
          action: opts.action ?? '',
          target: opts.target ?? '',
          actor: opts.actor ?? '',
          startTime: time('--since', opts.since),
          endTime: time('--until', opts.until),
          pageSize: Math.min(limit - events.length, 1000),
          pageToken,
        });
        events.push(...res.events);
        pageToken = res.nextPageToken;
      } while (pageToken !== '' && events.length < limit);
      if (opts.json === true) printJson(io, events.map(eventJson));
      else {
        printTable(
          io,
          ['TIME', 'ACTOR', 'COLLECTION', 'ACTION', 'TARGET', 'FINGERPRINT'],
          events.map((e) => [
            isoTime(e.time),
            e.actor,
            e.collection,
            e.action,
            e.target,
            e.fingerprint,
          ]),
        );
      }
    });
}
