import { type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { sealWith } from '../common/sealing.js';
import {
  type Leak,
  type Receipt,
  type ReportRequest,
  ReportStatement,
} from '../proto/gen/runkeys/v1/runs.js';
import type { MaskListener, Scrubber } from './scrub/scrubber.js';

export type LeakStream = 'stdout' | 'stderr' | 'trajectory';

/** What one report may carry; the control plane refuses more. */
export const MAX_RECEIPTS = 64;
export const MAX_LEAKS = 256;
/** Receipts wait this long for company before they go. */
const RECEIPT_DELAY_MS = 200;
/** Leak counts are sent at most this often. */
export const LEAK_INTERVAL_MS = 5_000;
/** A report's call gives up after this long; it is tried again at the next turn. */
const CALL_TIMEOUT_MS = 5_000;
/** Reports flush() sends at most on the way out. */
const FLUSH_ROUNDS = 8;
/** Distinct (name, stream, value) counters kept before new ones are dropped. */
const MAX_COUNTERS = 4_096;

/**
 * Counts what the scrubber replaced, by name, stream and value fingerprint (the tag each value
 * was registered with). Values registered without a fingerprint are not counted. Counting is a
 * map update per marker: a command that prints its key a million times costs a counter.
 */
export class LeakCounter {
  private readonly counts = new Map<string, Leak>();
  private dropped = false;
  /** Called when a counter starts (the reporter then plans a report). */
  onCount: () => void = () => {};

  constructor(
    private readonly scrubber: Scrubber,
    private readonly log: Logger,
  ) {}

  listener(stream: LeakStream): MaskListener {
    return (pattern) => {
      const { name, tag } = this.scrubber.labelOf(pattern);
      if (tag === '') return;
      const key = `${name}\0${stream}\0${tag}`;
      const known = this.counts.get(key);
      if (known !== undefined) {
        known.count++;
        return;
      }
      if (this.counts.size >= MAX_COUNTERS) {
        if (!this.dropped) this.log.warn('too many distinct leaks to count; dropping new ones');
        this.dropped = true;
        return;
      }
      const leak: Leak = { name, stream, count: 1, fingerprint: tag };
      this.counts.set(key, leak);
      this.onCount();
    };
  }

  get pending(): number {
    return this.counts.size;
  }

  /** Takes up to `max` counters, which start again from zero. */
  take(max: number): Leak[] {
    const out: Leak[] = [];
    for (const [key, leak] of this.counts) {
      if (out.length >= max) break;
      out.push(leak);
      this.counts.delete(key);
    }
    return out;
  }
}

/** Seals a report with the key bundles are opened with, like a refresh ask. */
export function reportRequest(
  runId: string,
  body: Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>,
  shared: Uint8Array,
  time: Date = new Date(),
): ReportRequest {
  const statement = ReportStatement.encode({ runId, time, ...body }).finish();
  const { nonce, box } = sealWith(statement, shared);
  return { runId, nonce: Buffer.from(nonce), box: Buffer.from(box) };
}

export interface ReporterOptions {
  /** Sends one report (sealed by the session); rejects with the call's error. */
  send: (body: Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>) => Promise<void>;
  /** Absent when nothing is scrubbed (no counts to send, receipts only). */
  leaks?: LeakCounter | undefined;
  log: Logger;
  leakIntervalMs?: number;
}

type Body = Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>;

/**
 * Sends receipts and leak counts to the control plane (AgentService.Report):
 * 1. a receipt goes out within RECEIPT_DELAY_MS; leak counts ride along, or go on their own at
 *    most every leakIntervalMs;
 * 2. one report is in flight at a time; each has the next number, and one that failed for a
 *    reason worth retrying (unreachable, rate limited, timed out) is sent again with the same
 *    number and contents, so the control plane counts it once whatever happened to the answer;
 * 3. one the control plane refused as malformed is dropped and logged (retrying cannot help);
 * 4. flush() sends what is left, once, before the agent exits.
 * Reports are best effort: a lost one costs receipts and counts, never the run.
 */
export class Reporter {
  private sequence = 0;
  private unsent: Body | undefined;
  private receipts: Receipt[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<boolean> | undefined;
  private lastLeaks = 0;
  private stopped = false;
  private readonly leakIntervalMs: number;

  constructor(private readonly opts: ReporterOptions) {
    this.leakIntervalMs = opts.leakIntervalMs ?? LEAK_INTERVAL_MS;
  }

  receipt(r: Receipt): void {
    this.receipts.push(r);
    // Only the newest are worth keeping when the control plane has been away for long.
    if (this.receipts.length > MAX_RECEIPTS) this.receipts.shift();
    this.schedule(RECEIPT_DELAY_MS);
  }

  /** Called when the scrubber may have counted something; cheap. */
  poke(): void {
    if ((this.opts.leaks?.pending ?? 0) > 0) this.schedule(this.leakIntervalMs);
  }

  /**
   * Sends what is left (a report retried, then what it could not carry), giving up at the
   * first failure; nothing is sent after it.
   */
  async flush(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    for (let round = 0; round < FLUSH_ROUNDS && this.hasWork(); round++) {
      if (!(await this.sendOnce(true))) return;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private hasWork(): boolean {
    const counted = this.opts.leaks?.pending ?? 0;
    return this.unsent !== undefined || this.receipts.length > 0 || counted > 0;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.sending !== undefined) return;
    const wait =
      this.receipts.length > 0 || this.unsent !== undefined
        ? delayMs
        : Math.max(delayMs, this.lastLeaks + this.leakIntervalMs - Date.now());
    if (this.timer !== undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.sending = this.sendOnce(false).finally(() => {
          this.sending = undefined;
          if (this.hasWork()) this.schedule(this.unsent !== undefined ? this.leakIntervalMs : 0);
        });
      },
      Math.max(0, wait),
    );
  }

  // 2. True when the report went (or there was none), false when it is still unsent.
  private async sendOnce(last: boolean): Promise<boolean> {
    let body = this.unsent;
    if (body === undefined) {
      const receipts = this.receipts.splice(0, MAX_RECEIPTS);
      const leaks = this.opts.leaks?.take(MAX_LEAKS) ?? [];
      if (receipts.length === 0 && leaks.length === 0) return true;
      this.sequence += 1;
      body = { sequence: this.sequence, receipts, leaks };
      if (leaks.length > 0) this.lastLeaks = Date.now();
    }
    this.unsent = body;
    try {
      await withTimeout(this.opts.send(body), CALL_TIMEOUT_MS);
      this.unsent = undefined;
      return true;
    } catch (err) {
      const code = (err as Partial<ServiceError>).code;
      // 3.
      if (code === status.INVALID_ARGUMENT || code === status.UNAUTHENTICATED) {
        this.opts.log.warn(
          { code, report: body.sequence },
          'the control plane refused a report; dropping it',
        );
        this.unsent = undefined;
        return true;
      }
      if (last) {
        this.opts.log.warn({ code, report: body.sequence }, 'last report not delivered');
      }
      return false;
    }
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('report timed out')), ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}
