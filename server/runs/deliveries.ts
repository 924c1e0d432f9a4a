import type { Bundle } from '../../proto/gen/runkeys/v1/runs.js';
import { insertAuditEvent, type NewAuditEvent } from '../store/audit.js';
import type { Db } from '../store/db.js';
import { setDeliveredVersions } from '../store/runs.js';

interface Pending {
  runId: string;
  version: number;
  event: NewAuditEvent;
  done: () => void;
  failed: (err: unknown) => void;
}

/** Audit rows per INSERT: well under SQLite's and PostgreSQL's limits on bound parameters. */
const CHUNK = 400;

/**
 * Records deliveries of updates (the run's delivered version and a `run.deliver` audit event)
 * in batches: every stream that a change wakes in the same turn of the event loop is recorded
 * in one transaction, with one UPDATE per version and one multi-row INSERT, instead of one
 * transaction per stream. A stream sends its update only once its delivery is recorded.
 */
export class DeliveryLog {
  private pending: Pending[] = [];

  constructor(private readonly db: Db) {}

  record(runId: string, bundle: Bundle, event: NewAuditEvent): Promise<void> {
    return new Promise((done, failed) => {
      if (this.pending.length === 0) setImmediate(() => void this.flush());
      this.pending.push({ runId, version: bundle.version, event, done, failed });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      await this.db.transaction().execute(async (trx) => {
        const byVersion = new Map<number, string[]>();
        for (const p of batch) {
          const ids = byVersion.get(p.version) ?? [];
          ids.push(p.runId);
          byVersion.set(p.version, ids);
        }
        for (const [version, ids] of byVersion) await setDeliveredVersions(trx, ids, version);
        for (let i = 0; i < batch.length; i += CHUNK) {
          await insertAuditEvent(
            trx,
            batch.slice(i, i + CHUNK).map((p) => p.event),
          );
        }
      });
      for (const p of batch) p.done();
    } catch (err) {
      for (const p of batch) p.failed(err);
    }
  }
}
