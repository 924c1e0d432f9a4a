import type { Logger } from 'pino';
import { sealWith } from '../common/sealing.js';
import {
  type AccountState,
  type RefreshAccountRequest,
  RefreshAccountStatement,
} from '../proto/gen/runkeys/v1/runs.js';
import { AccountStatus } from './account-status.js';

/** At most one ask per account in this long, whatever its outcome. */
export const ASK_INTERVAL_MS = 10_000;
/** The least time before expiry at which the agent asks. */
export const MIN_MARGIN_MS = 5_000;
/** setTimeout's longest delay; a later wake-up is re-armed when it comes. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * When to ask for a fresh token: a margin before expiry of a tenth of the token's life as the
 * agent saw it (from the bundle that first carried this expiry to the expiry), and at least
 * MIN_MARGIN_MS. A one-hour token is asked for six minutes before it expires.
 */
export function refreshDueAt(arrivedAt: number, expireAt: number): number {
  return expireAt - Math.max((expireAt - arrivedAt) / 10, MIN_MARGIN_MS);
}

/**
 * The RefreshAccount request: a RefreshAccountStatement (run, account, now) sealed with the
 * shared key of the agent's key and the control plane's, the one bundles are opened with, so
 * the control plane knows the ask comes from the key the run is bound to.
 */
export function refreshAccountRequest(
  runId: string,
  account: string,
  shared: Uint8Array,
  time: Date = new Date(),
): RefreshAccountRequest {
  const statement = RefreshAccountStatement.encode({ runId, account, time }).finish();
  const { nonce, box } = sealWith(statement, shared);
  return { runId, nonce: Buffer.from(nonce), box: Buffer.from(box) };
}

export interface RefreshSchedulerOptions {
  /** Asks the control plane to refresh one account; the token comes back as a new bundle. */
  ask: (account: string) => Promise<void>;
  log: Logger;
  now?: () => number;
}

interface Held {
  status: string;
  expireAt: number;
  dueAt: number;
}

/**
 * Keeps the run's account tokens fresh by asking for them before they expire:
 * 1. on each bundle, note every account with an expiry and when it falls due (refreshDueAt());
 *    an expiry the agent already held keeps its due time;
 * 2. arm one timer for the earliest account that is due, not asked for in the last
 *    ASK_INTERVAL_MS, not being asked for now, and not waiting for an admin (needs_reconnect);
 * 3. when it fires, ask for every such account; a failure is logged and, like a success that
 *    brings no new bundle, asked again ASK_INTERVAL_MS after the last ask;
 * 4. stop() clears the timer; answers that come after it are ignored.
 * The timer is unref'd: it never keeps the agent alive.
 */
export class RefreshScheduler {
  private held = new Map<string, Held>();
  private readonly lastAsk = new Map<string, number>();
  private readonly asking = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: RefreshSchedulerOptions) {
    this.now = opts.now ?? Date.now;
  }

  // 1.
  update(accounts: readonly AccountState[]): void {
    if (this.stopped) return;

    const now = this.now();
    const next = new Map<string, Held>();
    for (const { name, status, expireTime } of accounts) {
      if (expireTime === undefined) continue;
      const expireAt = expireTime.getTime();
      const old = this.held.get(name);
      const dueAt = old?.expireAt === expireAt ? old.dueAt : refreshDueAt(now, expireAt);
      next.set(name, { status, expireAt, dueAt });
    }
    this.held = next;
    this.arm();
  }

  // 4.
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** When an account may be asked for next, or undefined when it may not be at all. */
  private wakeAt(name: string, h: Held): number | undefined {
    if (h.status === AccountStatus.needsReconnect || this.asking.has(name)) return undefined;
    return Math.max(h.dueAt, (this.lastAsk.get(name) ?? -Infinity) + ASK_INTERVAL_MS);
  }

  // 2.
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let first = Infinity;
    for (const [name, h] of this.held) first = Math.min(first, this.wakeAt(name, h) ?? Infinity);
    if (first === Infinity) return;

    const delay = Math.min(Math.max(0, first - this.now()), MAX_DELAY_MS);
    this.timer = setTimeout(() => this.fire(), delay);
    this.timer.unref();
  }

  // 3.
  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;

    const now = this.now();
    for (const [name, h] of this.held) {
      const at = this.wakeAt(name, h);
      if (at !== undefined && at <= now) this.askFor(name, now);
    }
    this.arm();
  }

  private askFor(account: string, now: number): void {
    this.lastAsk.set(account, now);
    this.asking.add(account);
    this.opts.log.debug({ account }, 'asking the control plane for a fresh token');
    let asked: Promise<void>;
    try {
      asked = this.opts.ask(account);
    } catch (err) {
      asked = Promise.reject(err);
    }
    asked
      .catch((err: unknown) => {
        if (this.stopped) return;
        const e = err as { code?: number; details?: string; message?: string };
        this.opts.log.warn(
          { account, code: e.code, reason: e.details ?? e.message, retryInMs: ASK_INTERVAL_MS },
          'refresh ask failed',
        );
      })
      .finally(() => {
        this.asking.delete(account);
        if (!this.stopped) this.arm();
      });
  }
}
