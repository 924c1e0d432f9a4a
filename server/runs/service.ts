import {
  type Run,
  type RunServiceServer,
  RunState,
  type Runtime,
} from '../../proto/gen/runkeys/v1/runs.js';
import { authorize, type Principal } from '../auth/principal.js';
import { newCredential } from '../crypto/native.js';
import { invalid, notFound, precondition } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import { randomHex } from '../ids.js';
import { providerName } from '../layers/providers.js';
import type { Limits } from '../limits.js';
import type { Metrics } from '../metrics.js';
import type { AccountDeps } from '../services/accounts.js';
import { audit, loadCollection, optionalDate, toDate } from '../services/deps.js';
import type { Db } from '../store/db.js';
import type { GroupCommit } from '../store/group-commit.js';
import { getAccount, getOAuthClient } from '../store/oauth.js';
import { getProviderKey } from '../store/provider-keys.js';
import { listLeaks } from '../store/reports.js';
import * as store from '../store/runs.js';
import type { RunTable, RunState as StoredState } from '../store/schema.js';
import { quote, resourceName } from '../validate/common.js';
import type { ClientConfig } from '../validate/oauth.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import type { BundleCache } from './bundle.js';
import type { DeliveryLog } from './deliveries.js';
import { listReceiptsOf } from './receipts.js';
import type { RunKeys } from './run-keys.js';
import type { ChangeWatcher } from './watcher.js';

export const RUN_ID = /^run_[0-9a-f]{16}$/;
const DEFAULT_TTL_SECONDS = 3600;
const MAX_TTL_SECONDS = 24 * 3600;
/** A bootstrap secret that is not used within this long is refused. */
export const BOOTSTRAP_LIFETIME_MS = 10 * 60 * 1000;
const LABEL_KEY = /^[a-z0-9_.-]{1,63}$/;
const MAX_LABELS = 32;

export interface RunDeps extends AccountDeps {
  bundles: BundleCache;
  deliveries: DeliveryLog;
  /** The attach's claim transactions, committed together on SQLite. */
  claims: GroupCommit;
  metrics: Metrics;
  limits: Limits;
  runKeys: RunKeys;
  watcher: ChangeWatcher;
}

const STATE_TO_WIRE: Record<StoredState, RunState> = {
  pending: RunState.RUN_STATE_PENDING,
  attached: RunState.RUN_STATE_ATTACHED,
  ended: RunState.RUN_STATE_ENDED,
  expired: RunState.RUN_STATE_EXPIRED,
};

/** A run whose TTL ran out reads as expired even before anything marked it. */
export function effectiveState(row: RunTable, now: number): StoredState {
  if ((row.state === 'pending' || row.state === 'attached') && row.expires_at <= now) {
    return 'expired';
  }
  return row.state;
}

export function toRun(row: RunTable, now: number): Run {
  return {
    id: row.id,
    collection: row.collection,
    runtime: { provider: row.provider, auth: row.auth, account: row.account },
    state: STATE_TO_WIRE[effectiveState(row, now)],
    labels: JSON.parse(row.labels) as Record<string, string>,
    createTime: toDate(row.created_at),
    expireTime: toDate(row.expires_at),
    attachTime: optionalDate(row.attached_at),
    endTime: optionalDate(row.ended_at),
    endReason: row.end_reason,
    createdBy: row.created_by,
    deliveredVersion: Number(row.delivered_version),
    appliedVersion: Number(row.applied_version),
    leaks: [],
  };
}

function runtimeOf(r: Runtime | undefined): { provider: string; auth: string; account: string } {
  const provider = providerName(r?.provider ?? '');
  const auth = r?.auth === undefined || r.auth === '' ? 'api_key' : r.auth;
  if (auth === 'api_key') {
    if ((r?.account ?? '') !== '') {
      throw invalid('"runtime.account" must be empty unless "runtime.auth" is account');
    }
    return { provider, auth, account: '' };
  }
  if (auth !== 'account') {
    throw invalid(`"runtime.auth" must be api_key or account; got ${quote(auth)}`);
  }
  return { provider, auth, account: resourceName('runtime.account', r?.account ?? '') };
}

/** What makes a runtime usable: its provider key, or a connected account for that provider. */
async function checkRuntimeCredential(
  db: Db,
  collection: string,
  runtime: { provider: string; auth: string; account: string },
): Promise<void> {
  if (runtime.auth === 'api_key') {
    if ((await getProviderKey(db, collection, runtime.provider)) === undefined) {
      throw precondition(
        `collection "${collection}" has no ${runtime.provider} key; set one with: ` +
          `runkeys providers set ${runtime.provider} --collection ${collection}`,
      );
    }
    return;
  }
  const account = await getAccount(db, collection, runtime.account);
  if (account === undefined) {
    throw precondition(
      `collection "${collection}" has no account "${runtime.account}"; connect one with: ` +
        `runkeys accounts connect --collection ${collection} --name ${runtime.account} CLIENT`,
    );
  }
  const client = await getOAuthClient(db, collection, account.client);
  const provider = client === undefined ? '' : (JSON.parse(client.config) as ClientConfig).provider;
  if (provider !== runtime.provider) {
    throw precondition(
      `account "${runtime.account}" is not a ${runtime.provider} credential: its OAuth client ` +
        `"${account.client}" must be registered with --provider ${runtime.provider}`,
    );
  }
  if (account.status === 'needs_reconnect') {
    throw precondition(
      `account "${runtime.account}" needs reconnecting: runkeys accounts connect ` +
        `--collection ${collection} --name ${runtime.account} ${account.client}`,
    );
  }
}

function labelsOf(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw invalid(`"labels" must hold at most ${MAX_LABELS}`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) {
      throw invalid(`"labels" keys must match ${LABEL_KEY.source}; got ${quote(k)}`);
    }
    if (v.length > 256 || v.includes('\0')) {
      throw invalid(`"labels.${k}" must be at most 256 characters without NUL`);
    }
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}

function ttlOf(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TTL_SECONDS) {
    throw invalid(
      `"ttl_seconds" must be between 0 (one hour) and ${MAX_TTL_SECONDS}; got ${seconds}`,
    );
  }
  return seconds === 0 ? DEFAULT_TTL_SECONDS : seconds;
}

/** Runner and admin tokens manage runs; a viewer may read them. */
function authorizeRuns(p: Principal, collection: string, write: boolean): void {
  authorize(p, collection, !write && p.role === 'viewer' ? 'read' : 'run');
}

export function runHandlers(deps: RunDeps): Handlers<RunServiceServer> {
  const { db } = deps;

  async function load(collection: string, id: string): Promise<RunTable> {
    const row = RUN_ID.test(id) ? await store.getRun(db, id) : undefined;
    if (row === undefined || row.collection !== collection) {
      throw notFound(`run ${quote(id)} not found in collection "${collection}"`);
    }
    return row;
  }

  return {
    async createRun(req, { principal, log }) {
      const collection = resourceName('collection', req.collection);
      authorizeRuns(principal, collection, true);
      const runtime = runtimeOf(req.runtime);
      const ttl = ttlOf(req.ttlSeconds);
      const labels = labelsOf(req.labels);
      const runKey = await deps.runKeys.current();
      const bootstrap = newCredential();
      const now = deps.now();
      const row: RunTable = {
        id: `run_${randomHex(8)}`,
        collection,
        provider: runtime.provider,
        auth: runtime.auth,
        account: runtime.account,
        labels: JSON.stringify(labels),
        state: 'pending',
        created_at: now,
        expires_at: now + ttl * 1000,
        ended_at: null,
        end_reason: '',
        created_by: principal.tokenId,
        run_key_id: runKey.id,
        bootstrap_verifier: bootstrap.verifier,
        bootstrap_expires_at: now + BOOTSTRAP_LIFETIME_MS,
        agent_public_key: null,
        attached_at: null,
        resume_verifier: null,
        resume_prev_verifier: null,
        delivered_version: 0,
        report_seq: 0,
        applied_version: 0,
      };
      await db.transaction().execute(async (trx) => {
        await loadCollection(trx, collection);
        await checkRuntimeCredential(trx, collection, runtime);
        await store.insertRun(trx, row);
        await audit(trx, deps, principal, {
          collection,
          action: 'run.create',
          target: row.id,
          details: { provider: runtime.provider, ttl_seconds: String(ttl) },
        });
      });
      log.info({ run: row.id, collection, provider: runtime.provider }, 'run created');
      return {
        run: toRun(row, now),
        bootstrapSecret: bootstrap.credential.toString('base64url'),
        serverPublicKey: Buffer.from(runKey.publicKey).toString('base64'),
      };
    },

    async getRun(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorizeRuns(principal, collection, false);
      const row = await load(collection, req.id);
      const leaks = (await listLeaks(db, row.id)).map((l) => ({
        name: l.name,
        stream: l.stream,
        count: Number(l.count),
        fingerprint: l.fingerprint,
        firstTime: toDate(l.first_at),
        lastTime: toDate(l.last_at),
      }));
      return { run: { ...toRun(row, deps.now()), leaks } };
    },

    async listReceipts(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorizeRuns(principal, collection, false);
      if (req.runId !== '') await load(collection, req.runId);
      return listReceiptsOf(db, collection, req);
    },

    async listRuns(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorizeRuns(principal, collection, false);
      const state = Object.entries(STATE_TO_WIRE).find(([, v]) => v === req.state)?.[0] as
        | StoredState
        | undefined;
      if (req.state !== RunState.RUN_STATE_UNSPECIFIED && state === undefined) {
        throw invalid('"state" must be a RunState');
      }
      const scope = `runs:${collection}:${state ?? '*'}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      const now = deps.now();
      const rows = await store.listRuns(db, collection, state, page.after, page.size, now);
      return {
        runs: rows.map((r) => toRun(r, now)),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.id),
        ),
      };
    },

    async endRun(req, { principal, log }) {
      const collection = resourceName('collection', req.collection);
      authorizeRuns(principal, collection, true);
      const current = await load(collection, req.id);
      const now = deps.now();
      const ended = await db.transaction().execute(async (trx) => {
        if (!(await store.finishRun(trx, current.id, 'ended', now))) return false;
        await audit(trx, deps, principal, { collection, action: 'run.end', target: current.id });
        return true;
      });
      if (!ended) {
        throw precondition(`run ${current.id} has already ended (${effectiveState(current, now)})`);
      }
      deps.watcher.poke();
      log.info({ run: current.id, collection }, 'run ended');
      return { run: toRun((await store.getRun(db, current.id)) ?? current, now) };
    },
  };
}
