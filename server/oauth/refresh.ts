import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import type { Principal } from '../auth/principal.js';
import { openValue, sealValue } from '../crypto/keyring.js';
import type { Logger } from '../logger.js';
import { accountTokensContext } from '../services/accounts.js';
import { audit, collectionKeys, type ServiceDeps } from '../services/deps.js';
import type { Db } from '../store/db.js';
import * as store from '../store/oauth.js';
import type { AccountTable } from '../store/schema.js';
import { providerFor } from './endpoints.js';
import { classify, type Failure, loggableError, type StoredTokens, tokensFrom } from './tokens.js';

/** The actor of changes the control plane makes on its own (refreshes, status changes). */
export const CONTROL_PLANE: Principal = {
  tokenId: 'control-plane',
  role: 'root',
  collection: null,
};

export interface RefreshSettings {
  /** Refresh this share of the token's lifetime before it expires... */
  marginRatio: number;
  /** ...but at least this long before (and never earlier than half the lifetime). */
  minMarginMs: number;
  /** Refresh an account nobody used for this long, before its refresh token ages out. */
  idleRefreshMs: number;
  /** How often the sweep looks for accounts to refresh. */
  sweepMs: number;
  /** How long a refresh lease lasts; longer than any provider call (PROVIDER_TIMEOUT_MS). */
  leaseMs: number;
}

export const DEFAULT_REFRESH: RefreshSettings = {
  marginRatio: 0.1,
  minMarginMs: 60_000,
  idleRefreshMs: 24 * 3_600_000,
  sweepMs: 1_000,
  leaseMs: 30_000,
};

/** Fault injection points, for tests of what a crash at each leaves behind. */
export interface RefreshHooks {
  /** Runs after the provider answered a refresh and before the answer is stored. */
  afterTokenResponse?: (collection: string, name: string) => Promise<void>;
}

export type RefreshOutcome =
  | 'refreshed'
  | 'fresh'
  | 'elsewhere'
  | 'failed'
  | 'needs_reconnect'
  | 'no_refresh_token'
  | 'gone';

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 5 * 60_000;
const LEASE_POLL_MS = 100;
const LOST_ANSWER = 'refresh answered but not stored';

/** Time before expiry at which a token is refreshed; see RefreshSettings. */
export function refreshMargin(lifetimeMs: number | null, s: RefreshSettings): number {
  if (lifetimeMs === null) return s.minMarginMs;
  return Math.min(Math.max(lifetimeMs * s.marginRatio, s.minMarginMs), lifetimeMs / 2);
}

type Due = Pick<
  AccountTable,
  | 'access_expires_at'
  | 'lifetime_ms'
  | 'last_refresh_at'
  | 'created_at'
  | 'next_attempt_at'
  | 'failures'
>;

export function isDue(row: Due, now: number, s: RefreshSettings): boolean {
  if (row.next_attempt_at !== null && Number(row.next_attempt_at) > now) return false;
  // A failed refresh is tried again once its backoff ends, due or not.
  if (row.failures > 0 || row.access_expires_at === null) return true;
  const lifetime = row.lifetime_ms === null ? null : Number(row.lifetime_ms);
  if (now >= Number(row.access_expires_at) - refreshMargin(lifetime, s)) return true;
  return now - Number(row.last_refresh_at ?? row.created_at) >= s.idleRefreshMs;
}

/**
 * The only refresher of connected accounts (RFC 6749 section 6, RFC 9700):
 * 1. single-flight per account in this process (callers share one promise) and across
 *    processes sharing the store (a lease row with a fencing counter);
 * 2. the lease holder re-reads the row after winning: a refresh finished elsewhere meanwhile
 *    means there is nothing to do;
 * 3. the new token set (rotated refresh token included, or the old refresh token when the
 *    response has none) is written in one sealed blob, under the fence, before any agent
 *    can be sent the new access token: the version bump in the same transaction is what
 *    sends it;
 * 4. a transient failure backs off with jitter and leaves the token as it is;
 * 5. `invalid_grant` re-reads the row (another process may just have rotated), then marks the
 *    account needs_reconnect once and tells the agents; it is not retried.
 */
export class Refresher {
  private readonly inflight = new Map<string, Promise<RefreshOutcome>>();
  private readonly owner = `proc_${randomBytes(8).toString('hex')}`;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly log: Logger,
    readonly settings: RefreshSettings = DEFAULT_REFRESH,
    private readonly hooks: RefreshHooks = {},
    /** Called after a write that changes what runs receive, so updates go out at once. */
    private readonly changed: () => void = () => {},
    /** Told the outcome of every refresh that called the provider or found nothing to do. */
    private readonly observe: (outcome: RefreshOutcome) => void = () => {},
  ) {}

  /**
   * Refreshes the account when it is due; with `force`, unless a refresh finished after the
   * call began. Never throws for provider failures: the outcome and the row say what happened.
   */
  refresh(collection: string, name: string, force = false): Promise<RefreshOutcome> {
    const key = `${collection}\0${name}`;
    // 1.
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const p = this.run(collection, name, force)
      .then((outcome) => {
        this.observe(outcome);
        return outcome;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.settings.sweepMs);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** One pass: refreshes every account that is due, one at a time per account. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.deps.now();
      const rows = await store.listRefreshable(this.deps.db);
      await Promise.all(
        rows
          .filter((r) => isDue(r, now, this.settings))
          .map((r) => this.refresh(r.collection, r.name)),
      );
    } catch (err) {
      this.log.error({ err }, 'refresh sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  private async run(collection: string, name: string, force: boolean): Promise<RefreshOutcome> {
    const { db } = this.deps;
    const began = this.deps.now();
    const first = await store.getAccount(db, collection, name);
    const settled = this.settledOutcome(first, began, force);
    if (settled !== undefined) return settled;
    const lease = await this.acquire(collection, name);
    if (lease === undefined) return 'elsewhere';
    // 2.
    const row = await store.getAccount(db, collection, name);
    const again = this.settledOutcome(row, began, force);
    if (again !== undefined || row === undefined) {
      await store.writeUnderFence(db, collection, name, lease.fence, {});
      return again ?? 'gone';
    }
    return this.exchange(row, lease.fence, lease.interrupted);
  }

  /** The outcome without calling the provider, or undefined when a refresh is needed. */
  private settledOutcome(
    row: AccountTable | undefined,
    began: number,
    force: boolean,
  ): RefreshOutcome | undefined {
    if (row === undefined) return 'gone';
    if (row.status === 'needs_reconnect') return 'needs_reconnect';
    if (row.refresh_token_set !== 1) return 'no_refresh_token';
    if (force) return Number(row.last_refresh_at ?? 0) >= began ? 'fresh' : undefined;
    return isDue(row, this.deps.now(), this.settings) ? undefined : 'fresh';
  }

  /** Takes the lease, or waits for its holder to finish and returns undefined. */
  private async acquire(collection: string, name: string) {
    const { db } = this.deps;
    const lease = await store.takeLease(
      db,
      collection,
      name,
      this.owner,
      this.deps.now(),
      this.settings.leaseMs,
    );
    if (lease !== undefined) return lease;
    const deadline = Date.now() + this.settings.leaseMs + 1_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
      const row = await store.getAccount(db, collection, name);
      if (row === undefined || row.lease_owner === null) break;
    }
    return undefined;
  }

  private async exchange(
    row: AccountTable,
    fence: number,
    interrupted: boolean,
  ): Promise<RefreshOutcome> {
    const { db } = this.deps;
    const { collection, name } = row;
    const keys = await collectionKeys(this.deps, db, collection);
    const held = JSON.parse(
      openValue(keys, accountTokensContext(collection, name), row.tokens_sealed),
    ) as StoredTokens;
    let answered = false;
    const sentAt = this.deps.now();
    try {
      const client = await store.getOAuthClient(db, collection, row.client);
      if (client === undefined) throw new Error(`OAuth client ${row.client} is gone`);
      const p = await providerFor(client, keys);
      const res = await oauth.refreshTokenGrantRequest(
        p.as,
        p.client,
        p.auth,
        held.refresh_token,
        p.http(),
      );
      const body = await oauth.processRefreshTokenResponse(p.as, p.client, res);
      answered = true;
      await this.hooks.afterTokenResponse?.(collection, name);
      // 3.
      const next = tokensFrom(body, held.refresh_token);
      const wrote = await db.transaction().execute(async (trx) => {
        const ok = await store.writeUnderFence(trx, collection, name, fence, {
          tokens_sealed: sealValue(
            keys,
            accountTokensContext(collection, name),
            JSON.stringify(next.tokens),
          ),
          refresh_token_set: next.tokens.refresh_token === '' ? 0 : 1,
          access_expires_at: sentAt + next.lifetimeS * 1000,
          lifetime_ms: next.lifetimeS * 1000,
          last_refresh_at: this.deps.now(),
          last_error: '',
          status: 'connected',
          failures: 0,
          next_attempt_at: null,
          scopes: next.scope ?? row.scopes,
          updated_at: this.deps.now(),
        });
        if (!ok) return false;
        await audit(trx, this.deps, CONTROL_PLANE, {
          collection,
          action: 'account.refresh',
          target: name,
          details: { outcome: 'ok', rotated: String(body.refresh_token !== undefined) },
        });
        return true;
      });
      if (!wrote) {
        this.log.warn(
          { collection, account: name },
          'refresh lease was taken over; result dropped',
        );
        return 'elsewhere';
      }
      this.changed();
      this.log.info({ collection, account: name, lifetimeS: next.lifetimeS }, 'account refreshed');
      return 'refreshed';
    } catch (err) {
      if (answered) return this.lost(row, fence, err);
      const failure = classify(err, this.deps.now());
      if (failure.kind === 'invalid_grant') return this.grantGone(row, fence, failure, interrupted);
      return this.failed(row, fence, failure);
    }
  }

  /** 4. */
  private async failed(row: AccountTable, fence: number, f: Failure): Promise<RefreshOutcome> {
    const { collection, name } = row;
    const failures = row.failures + 1;
    const backoff =
      f.kind === 'refused'
        ? BACKOFF_MAX_MS
        : Math.min(BACKOFF_BASE_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
    let wait = Math.max(f.retryAfterMs ?? 0, backoff * (0.5 + Math.random() / 2));
    // Never back off past the token's end: while it is valid, try at least at the halfway
    // point of what is left, so a provider that comes back in time is used in time.
    if (row.access_expires_at !== null) {
      const left = Number(row.access_expires_at) - this.deps.now();
      if (left > 0) wait = Math.min(wait, Math.max(BACKOFF_BASE_MS, left / 2));
    }
    await this.setStatus(row, fence, 'refresh_failing', `refresh failed: ${f.code}`, {
      failures,
      next_attempt_at: this.deps.now() + Math.round(wait),
    });
    this.log.warn(
      { collection, account: name, error: f.code, retryInMs: Math.round(wait) },
      'refresh failed; the current token stays',
    );
    return 'failed';
  }

  /** 5. */
  private async grantGone(
    row: AccountTable,
    fence: number,
    f: Failure,
    interrupted: boolean,
  ): Promise<RefreshOutcome> {
    const { collection, name } = row;
    const now = await store.getAccount(this.deps.db, collection, name);
    if (now !== undefined && now.tokens_sealed !== row.tokens_sealed) {
      await store.writeUnderFence(this.deps.db, collection, name, fence, {});
      return 'elsewhere';
    }
    const why =
      interrupted || row.last_error.startsWith(LOST_ANSWER)
        ? `${f.code} after an earlier refresh was interrupted before its answer was stored; ` +
          'connect the account again'
        : `${f.code}: the grant is gone (consent revoked or refresh token refused); ` +
          'connect the account again';
    await this.setStatus(row, fence, 'needs_reconnect', why, { next_attempt_at: null });
    this.log.warn({ collection, account: name, error: f.code }, 'account needs reconnecting');
    return 'needs_reconnect';
  }

  /** The provider answered but the answer could not be stored: say so plainly. */
  private async lost(row: AccountTable, fence: number, err: unknown): Promise<RefreshOutcome> {
    const { collection, name } = row;
    this.log.error(
      { err: loggableError(err), collection, account: name },
      'refresh answered but not stored',
    );
    try {
      await this.setStatus(
        row,
        fence,
        'refresh_failing',
        `${LOST_ANSWER}; the next refresh tells whether the grant survived`,
        { failures: row.failures + 1, next_attempt_at: this.deps.now() + BACKOFF_BASE_MS },
      );
    } catch (again) {
      this.log.error({ err: again, collection, account: name }, 'could not record the failure');
    }
    return 'failed';
  }

  private async setStatus(
    row: AccountTable,
    fence: number,
    status: 'refresh_failing' | 'needs_reconnect',
    lastError: string,
    patch: store.AccountPatch,
  ): Promise<void> {
    const { collection, name } = row;
    const changed = row.status !== status;
    const wrote = await this.deps.db.transaction().execute(async (trx: Db) => {
      const ok = await store.writeUnderFence(trx, collection, name, fence, {
        ...patch,
        status,
        last_error: lastError,
        updated_at: this.deps.now(),
      });
      if (!ok) return false;
      await audit(trx, this.deps, CONTROL_PLANE, {
        collection,
        action: changed ? 'account.status' : 'refresh.failed',
        target: name,
        details: { status, error: lastError },
      });
      return true;
    });
    if (wrote && changed) this.changed();
  }
}
