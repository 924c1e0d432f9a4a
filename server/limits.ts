import { exhausted } from './errors.js';

/**
 * Token buckets by key: `rate` tokens a second, at most `burst` saved up. `take` spends one, or
 * says how long until one is there.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(key: string): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.now();
    if (this.buckets.size >= PRUNE_AT) this.prune(now);
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) / this.rate) * 1000) };
  }

  /** Forgets buckets that have filled up again: a fresh one would be the same. */
  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    }
  }
}

/** Buckets kept before the full ones are dropped (keys are tokens, or runs for reports). */
const PRUNE_AT = 10_000;

export interface LimitSettings {
  /** Admin writes per second per token, and the burst allowed. */
  adminWritesPerSecond: number;
  adminWriteBurst: number;
  /** Attach streams open at once for one run (one, plus a resume that overlaps it). */
  streamsPerRun: number;
  /** Attach streams open at once for one collection, on this replica. */
  streamsPerCollection: number;
  /** Agent reports (receipts and leak counts) per second per run, and the burst allowed. */
  reportsPerSecond: number;
  reportBurst: number;
}

export const DEFAULT_LIMITS: LimitSettings = {
  adminWritesPerSecond: 50,
  adminWriteBurst: 200,
  streamsPerRun: 2,
  streamsPerCollection: 20_000,
  reportsPerSecond: 1,
  reportBurst: 10,
};

/** Admin methods that change something (RunService and AgentService are not admin writes). */
const WRITE_SERVICE = /^runkeys\.v1\.(?!RunService|AgentService)[A-Za-z]+\//;
const WRITE_METHOD = /\/(Create|Update|Delete|StartConnect|RefreshConnectedAccount)/;

/** The limits one replica enforces. */
export class Limits {
  private readonly writes: TokenBuckets;
  private readonly reports: TokenBuckets;
  private readonly perRun = new Map<string, number>();
  private readonly perCollection = new Map<string, number>();

  constructor(readonly settings: LimitSettings = DEFAULT_LIMITS) {
    this.writes = new TokenBuckets(settings.adminWritesPerSecond, settings.adminWriteBurst);
    this.reports = new TokenBuckets(settings.reportsPerSecond, settings.reportBurst);
  }

  /**
   * Refuses an agent report past its run's rate with RESOURCE_EXHAUSTED. Agents batch their
   * reports (one every few seconds at most), so only a misbehaving one meets this.
   */
  checkReport(runId: string): void {
    const r = this.reports.take(runId);
    if (!r.ok) {
      throw exhausted(
        `run ${runId} reports faster than ${this.settings.reportsPerSecond} a second; ` +
          `retry in ${r.retryAfterMs} ms`,
      );
    }
  }

  /** Refuses an admin write past its token's rate with RESOURCE_EXHAUSTED. */
  checkWrite(method: string, tokenId: string): void {
    if (!WRITE_SERVICE.test(method) || !WRITE_METHOD.test(method)) return;
    const r = this.writes.take(tokenId);
    if (!r.ok) {
      throw exhausted(
        `token ${tokenId} is over its write rate (${this.settings.adminWritesPerSecond} a ` +
          `second); retry in ${r.retryAfterMs} ms`,
      );
    }
  }

  /**
   * Refuses an Attach stream past the caps with RESOURCE_EXHAUSTED, before anything is claimed
   * (so a refused attach consumes nothing). Streams are counted once their claim committed
   * (openStream), so attaches racing for one bootstrap secret are refused as such.
   */
  checkStream(runId: string, collection: string): void {
    const run = this.perRun.get(runId) ?? 0;
    if (run >= this.settings.streamsPerRun) {
      throw exhausted(
        `run ${runId} already has ${run} streams open (at most ${this.settings.streamsPerRun}); ` +
          'retry once the old one has closed',
      );
    }
    const col = this.perCollection.get(collection) ?? 0;
    if (col >= this.settings.streamsPerCollection) {
      throw exhausted(
        `collection "${collection}" has ${col} streams open on this control plane ` +
          `(at most ${this.settings.streamsPerCollection})`,
      );
    }
  }

  /** Counts an Attach stream in; returns the function that counts it out. */
  openStream(runId: string, collection: string): () => void {
    const run = this.perRun.get(runId) ?? 0;
    const col = this.perCollection.get(collection) ?? 0;
    this.perRun.set(runId, run + 1);
    this.perCollection.set(collection, col + 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      const r = (this.perRun.get(runId) ?? 1) - 1;
      if (r === 0) this.perRun.delete(runId);
      else this.perRun.set(runId, r);
      const c = (this.perCollection.get(collection) ?? 1) - 1;
      if (c === 0) this.perCollection.delete(collection);
      else this.perCollection.set(collection, c);
    };
  }
}
