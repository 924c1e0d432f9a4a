import type { Logger } from 'pino';

/**
 * How the agent stands, as its status file tells it:
 * - attached: on a live stream to the control plane;
 * - offline: the stream dropped; the agent serves what it holds until the deadline;
 * - expired: the deadline passed; the .env and the credential files were removed;
 * - revoked: the run ended; likewise removed;
 * - stopped: the agent exited; the files are as it left them, and nothing enforces a deadline.
 */
export type AgentState = 'attached' | 'offline' | 'expired' | 'revoked' | 'stopped';

/** While offline, the status is written this often, so its time left stays current. */
export const TICK_MS = 5_000;
/** setTimeout's longest delay; a later deadline is re-armed when the timer fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The agent's own outage limit: --max-offline (or RUNKEYS_MAX_OFFLINE), else the default. */
export interface OwnLimit {
  ms: number;
  /** True when the flag or the variable gave it: a collection's limit can then only lower it. */
  explicit: boolean;
}

/**
 * How long the agent serves what it holds while offline, given the limit the collection's
 * latest bundle carries (`max_offline_seconds`, 0 when the collection leaves it to the agent):
 * - an explicit --max-offline caps it: the shorter of the two wins;
 * - otherwise the collection's limit replaces the default.
 */
export function outageLimitMs(own: OwnLimit, collectionSeconds: number): number {
  if (collectionSeconds <= 0) return own.ms;

  const collection = collectionSeconds * 1000;
  return own.explicit ? Math.min(own.ms, collection) : collection;
}

export interface OutageOptions {
  own: OwnLimit;
  /** The .env's path, for the logs. */
  envFile: string;
  /** Removes the .env and every credential file; returns the files' paths. */
  withdraw: () => string[];
  /** Writes them again from the bundle held. */
  restore: () => void;
  /** Called after every change, and every TICK_MS while offline. */
  changed: () => void;
  log: Logger;
  now?: () => number;
}

/** The times the status file shows, in ms since the epoch. */
export interface OutageView {
  state: AgentState;
  /** The limit in force (see outageLimitMs). */
  maxOfflineMs: number;
  lastContact: number;
  /** When the stream dropped; undefined while attached. */
  offlineSince: number | undefined;
  /** When the files go (offline) or went (expired); undefined otherwise. */
  deadline: number | undefined;
}

/**
 * The outage policy, from the first bundle on:
 * 1. every sealed message from the control plane that opens is contact (the first bundle is
 *    the first); heartbeats are sealed too, so nobody on the path can hold the deadline off;
 * 2. when the stream drops the agent is offline, and keeps serving what it holds until the
 *    deadline: the last contact plus the limit (each bundle can change it: see update());
 * 3. at the deadline, still offline: remove the .env and the credential files (fail closed);
 * 4. contact ends the outage; after 3. the bundle held is written again;
 * 5. revocation and stop() end the policy.
 */
export class OutageClock {
  private state: AgentState = 'attached';
  private lastContact: number;
  private offlineSince: number | undefined;
  private limitMs: number;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: OutageOptions) {
    this.now = opts.now ?? Date.now;
    this.limitMs = opts.own.ms;
    // 1.
    this.lastContact = this.now();
  }

  view(): OutageView {
    const { state, lastContact, offlineSince } = this;
    const counting = state === 'offline' || state === 'expired';
    const deadline = counting ? lastContact + this.limitMs : undefined;
    return { state, maxOfflineMs: this.limitMs, lastContact, offlineSince, deadline };
  }

  /** Takes the limit a new bundle carries (its max_offline_seconds). */
  update(collectionSeconds: number): void {
    const limit = outageLimitMs(this.opts.own, collectionSeconds);
    if (this.ended() || limit === this.limitMs) return;

    this.limitMs = limit;
    this.opts.log.info({ maxOfflineSeconds: limit / 1000 }, 'outage limit changed');
    if (this.state === 'offline') {
      clearTimeout(this.deadlineTimer);
      this.armDeadline();
    }
    this.opts.changed();
  }

  // 1. and 4.
  contact(): void {
    if (this.ended()) return;

    this.lastContact = this.now();
    if (this.state === 'expired') {
      this.opts.restore();
      this.opts.log.info('control plane reachable again; the .env and credential files are back');
    } else if (this.state === 'offline') {
      this.opts.log.info(
        { offlineMs: this.lastContact - (this.offlineSince ?? this.lastContact) },
        'control plane reachable again',
      );
    }
    if (this.state !== 'attached') {
      this.state = 'attached';
      this.offlineSince = undefined;
      this.clearTimers();
    }
    this.opts.changed();
  }

  // 2.
  lost(): void {
    if (this.state !== 'attached') return;

    this.state = 'offline';
    this.offlineSince = this.now();
    const deadline = this.lastContact + this.limitMs;
    this.opts.log.warn(
      { deadline: new Date(deadline).toISOString(), maxOfflineSeconds: this.limitMs / 1000 },
      'control plane unreachable; serving what the agent holds until --max-offline',
    );
    this.armDeadline();
    this.ticker = setInterval(() => this.opts.changed(), TICK_MS);
    this.ticker.unref();
    this.opts.changed();
  }

  // 5.
  revoked(): void {
    this.end('revoked');
  }

  stop(): void {
    this.end(this.state === 'attached' || this.state === 'offline' ? 'stopped' : this.state);
  }

  private ended(): boolean {
    return this.state === 'revoked' || this.state === 'stopped';
  }

  private end(state: AgentState): void {
    if (this.ended()) return;

    this.clearTimers();
    this.state = state;
    this.opts.changed();
  }

  private armDeadline(): void {
    const left = this.lastContact + this.limitMs - this.now();
    this.deadlineTimer = setTimeout(
      () => this.atDeadline(),
      Math.min(Math.max(0, left), MAX_DELAY_MS),
    );
    this.deadlineTimer.unref();
  }

  // 3.
  private atDeadline(): void {
    this.deadlineTimer = undefined;
    if (this.state !== 'offline') return;

    if (this.now() < this.lastContact + this.limitMs) {
      this.armDeadline();
      return;
    }

    this.clearTimers();
    this.state = 'expired';
    try {
      const files = this.opts.withdraw();
      this.opts.log.warn(
        { envFile: this.opts.envFile, files, offlineMs: this.now() - this.lastContact },
        'control plane unreachable past --max-offline; removed the .env and credential files',
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.opts.log.error(
        { envFile: this.opts.envFile, code },
        'control plane unreachable past --max-offline; the .env could not be removed',
      );
    }
    this.opts.changed();
  }

  private clearTimers(): void {
    clearTimeout(this.deadlineTimer);
    clearInterval(this.ticker);
    this.deadlineTimer = undefined;
    this.ticker = undefined;
  }
}
