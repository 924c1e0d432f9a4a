import { newEventId } from './ids.js';
import type { Logger } from './logger.js';
import { deleteAuditEventsBefore, insertAuditEvent } from './store/audit.js';
import type { Db } from './store/db.js';

export interface RetentionSettings {
  /** Audit events older than this are deleted. */
  keepMs: number;
  /** How often the sweep runs (also once at start). */
  everyMs: number;
  /** Events deleted per statement; the sweep yields between batches. */
  batch: number;
}

export const DEFAULT_RETENTION_SWEEP = { everyMs: 10 * 60_000, batch: 5_000 };

/**
 * Keeps the audit log to a retention period (`--audit-retention`): a sweep deletes the events
 * older than the period, oldest first, in batches, and records what it deleted as one
 * `audit.prune` event (a count and the cutoff, never what the events said). Replicas may sweep
 * at once: a batch is one statement, and an event deleted by one is not found by the other.
 */
export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly db: Db,
    private readonly settings: RetentionSettings,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.settings.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; resolves to the number of events deleted (0 when a pass is already running). */
  sweep(): Promise<number> {
    if (this.running !== undefined) return Promise.resolve(0);
    this.running = this.pass()
      .catch((err: unknown) => {
        this.log.error({ err }, 'audit retention sweep failed');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async pass(): Promise<number> {
    const before = this.now() - this.settings.keepMs;
    let deleted = 0;
    for (;;) {
      const n = await deleteAuditEventsBefore(this.db, before, this.settings.batch);
      deleted += n;
      if (n < this.settings.batch) break;
      // Let calls in flight use the database between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (deleted > 0) {
      await insertAuditEvent(this.db, {
        id: newEventId(),
        time: this.now(),
        actor: 'runkeys',
        collection: '',
        action: 'audit.prune',
        target: '',
        fingerprint: '',
        details: JSON.stringify({ deleted, before: new Date(before).toISOString() }),
      });
      this.log.info({ deleted, before: new Date(before).toISOString() }, 'audit events pruned');
    }
    return deleted;
  }
}
