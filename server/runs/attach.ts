import { timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type ServerWritableStream, type StatusObject, status } from '@grpc/grpc-js';
import { PUBLIC_KEY_BYTES } from '../../common/sealing.js';
import {
  type AttachRequest,
  type AttachResponse,
  type Bundle,
  Envelope,
} from '../../proto/gen/runkeys/v1/runs.js';
import { newCredential, sealWith, sharedKey, verifyProof } from '../crypto/native.js';
import { ApiError, invalid, precondition } from '../errors.js';
import { refuseUndecodable, toStatus } from '../grpc/adapter.js';
import { newEventId } from '../ids.js';
import type { Logger } from '../logger.js';
import { insertAuditEvent, insertAuditEventPair, type NewAuditEvent } from '../store/audit.js';
import type { Db } from '../store/db.js';
import * as store from '../store/runs.js';
import type { CollectionRow, RunTable } from '../store/schema.js';
import { assembleBundle } from './bundle.js';
import type { RunKey } from './run-keys.js';
import { effectiveState, RUN_ID, type RunDeps } from './service.js';

/** How often a stream carries a sealed heartbeat: the agent's contact while nothing changes. */
export const HEARTBEAT_MS = 15_000;

const ATTACH_REFUSED =
  'attach refused: no run is waiting for this bootstrap secret and key ' +
  '(a secret is single use and expires 10 minutes after the run is created)';
const RESUME_REFUSED = 'resume refused: the resume credential or agent key does not match the run';

type Stream = ServerWritableStream<AttachRequest, AttachResponse>;

const unauthenticated = (message: string) => new ApiError('UNAUTHENTICATED', message);

/**
 * The Attach stream:
 * 1. check the request's shape;
 * 2. prove: a bootstrap proof binds a pending run to the agent's key and consumes the secret;
 *    a resume proof must come with the key already bound;
 * 3. send the sealed bundle, with a fresh resume credential;
 * 4. follow: each new collection version is a sealed update; sealed heartbeats keep the stream
 *    and the agent's outage clock alive;
 * 5. the run ending (EndRun or its TTL) sends a sealed revocation and closes the stream.
 */
export function attachHandler(deps: RunDeps, log: Logger) {
  return (call: Stream): void => {
    const kind = call.request.resumeProof?.length > 0 ? 'resume' : 'attach';
    run(deps, log, call).catch((err: unknown) => {
      const s = toStatus(err, log, ATTACH_METHOD);
      const refused = s.code === status.UNAUTHENTICATED || s.code === status.INVALID_ARGUMENT;
      deps.metrics.attaches.inc({ kind, outcome: refused ? 'refused' : 'error' });
      fail(call, s);
    });
  };
}

const ATTACH_METHOD = 'runkeys.v1.AgentService/Attach';

function fail(call: Stream, s: StatusObject): void {
  if (call.cancelled || call.destroyed) return;
  call.emit('error', s);
}

async function run(deps: RunDeps, baseLog: Logger, call: Stream): Promise<void> {
  refuseUndecodable(call.request);
  const req = call.request;
  // 1.
  if (!RUN_ID.test(req.runId))
    throw invalid('"run_id" must be a run id such as run_0123456789abcdef');
  if (req.agentPublicKey.length !== PUBLIC_KEY_BYTES) {
    throw invalid(`"agent_public_key" must be ${PUBLIC_KEY_BYTES} bytes`);
  }
  const bootstrap = req.bootstrapProof.length > 0;
  if (bootstrap === req.resumeProof.length > 0) {
    throw invalid('exactly one of "bootstrap_proof" and "resume_proof" must be set');
  }
  // 2.
  const claim = bootstrap ? await checkBootstrap(deps, req) : await checkResume(deps, req);
  const row = claim.row;
  deps.limits.checkStream(row.id, row.collection);
  const runKey = await deps.runKeys.byId(row.run_key_id);
  if (runKey === undefined) throw new Error(`run key ${row.run_key_id} is missing`);

  // 3. The bundle is assembled first; one transaction then claims the run (or rotates the
  // resume credential) and records the attach and the delivery, so a refused claim sends
  // nothing and an attach costs one write. On SQLite, claims arriving together share the
  // transaction's commit, each in a savepoint of its own (store/group-commit.ts).
  const resume = newCredential();
  const bundle = await assembleBundle(deps, row, deps.bundles, claim.collection);
  bundle.resumeCredential = resume.credential.toString('base64url');
  resume.credential.fill(0);
  const claimed = await deps.claims.run(async (trx) => {
    if (!(await claim.commit(trx, resume.verifier, bundle.version))) return false;
    const at = deps.now();
    await insertAuditEventPair(
      trx,
      runEvent(at, row, bootstrap ? 'run.attach' : 'run.resume', {}),
      deliveryEvent(at, row, bundle),
    );
    return true;
  });
  if (!claimed) throw unauthenticated(bootstrap ? ATTACH_REFUSED : RESUME_REFUSED);
  // 4. A stream counts against the limits once its claim committed, so attaches racing for one
  // bootstrap secret are refused as such.
  const release = deps.limits.openStream(row.id, row.collection);
  deps.metrics.attached.inc();
  try {
    const sender = new Sender(deps, baseLog, call, claim.attached, runKey, req.agentPublicKey);
    sender.sendBundle(bundle, false);
    deps.metrics.attaches.inc({ kind: bootstrap ? 'attach' : 'resume', outcome: 'ok' });
    deps.metrics.deliveries.inc({ kind: 'bundle' });
    // Debug, not info: the audit events just written record every attach and delivery, and at
    // info this line cost a few percent of an attach's CPU. A logger bound to the run is made
    // only for a stream that goes on to log more.
    baseLog.debug(
      {
        run: row.id,
        collection: row.collection,
        version: bundle.version,
        entries: bundle.entries.length,
      },
      bootstrap ? 'agent attached; bundle delivered' : 'agent resumed; bundle delivered',
    );
    await sender.follow();
  } finally {
    deps.metrics.attached.dec();
    release();
  }
}

/** A verified request, and the conditional write that claims the run for it. */
interface Claim {
  row: RunTable;
  /** The run's collection, read with the run: its version is what the bundle carries. */
  collection: CollectionRow;
  /** The row as it is once claimed. */
  attached: RunTable;
  /** Claims the run and records the version of the bundle it is about to receive. */
  commit(trx: Db, resumeVerifier: string, version: number): Promise<boolean>;
}

async function checkBootstrap(deps: RunDeps, req: AttachRequest): Promise<Claim> {
  const read = await store.getRunWithCollection(deps.db, req.runId);
  const now = deps.now();
  const verifier = read?.run.bootstrap_verifier ?? null;
  if (
    read === undefined ||
    verifier === null ||
    read.run.state !== 'pending' ||
    read.run.bootstrap_expires_at <= now ||
    read.run.expires_at <= now ||
    !verifyProof(verifier, req.bootstrapProof, 'bootstrap', read.run.id, req.agentPublicKey)
  ) {
    throw unauthenticated(ATTACH_REFUSED);
  }
  const row = read.run;
  const agentKey = Buffer.from(req.agentPublicKey).toString('base64');
  return {
    row,
    collection: read.collection,
    attached: { ...row, state: 'attached', agent_public_key: agentKey, attached_at: now },
    commit: (trx, resumeVerifier, version) =>
      store.claimBootstrap(trx, row.id, verifier, {
        agent_public_key: agentKey,
        attached_at: now,
        resume_verifier: resumeVerifier,
        delivered_version: version,
      }),
  };
}

async function checkResume(deps: RunDeps, req: AttachRequest): Promise<Claim> {
  const read = await store.getRunWithCollection(deps.db, req.runId);
  if (read === undefined || read.run.agent_public_key === null) {
    throw unauthenticated(RESUME_REFUSED);
  }
  const row = read.run;
  const bound = Buffer.from(read.run.agent_public_key, 'base64');
  const presented = Buffer.from(req.agentPublicKey);
  if (bound.length !== presented.length || !timingSafeEqual(bound, presented)) {
    throw unauthenticated(RESUME_REFUSED);
  }
  const used = [row.resume_verifier, row.resume_prev_verifier].find(
    (v) => v !== null && verifyProof(v, req.resumeProof, 'resume', row.id, req.agentPublicKey),
  );
  if (used === undefined || used === null) throw unauthenticated(RESUME_REFUSED);
  const state = effectiveState(row, deps.now());
  if (state !== 'attached') throw precondition(`run ${row.id} has ${state}; resume is refused`);
  // Keep the credential just used as the previous one until the agent proves with the new one:
  // a stream that breaks before the agent gets the new credential does not lock it out.
  const keep = used === row.resume_verifier ? used : (row.resume_prev_verifier ?? used);
  return {
    row,
    collection: read.collection,
    attached: row,
    commit: (trx, resumeVerifier, version) =>
      store.rotateResume(trx, row.id, used, resumeVerifier, keep, version),
  };
}

/** A delivery names the version and the variables delivered, never a value. */
const deliveryEvent = (at: number, row: RunTable, bundle: Bundle): NewAuditEvent =>
  runEvent(at, row, 'run.deliver', {
    version: String(bundle.version),
    names: bundle.entries.map((e) => e.name).join(','),
  });

async function auditRun(
  db: Db,
  at: number,
  row: RunTable,
  action: string,
  details: Record<string, string>,
): Promise<void> {
  await insertAuditEvent(db, runEvent(at, row, action, details));
}

export function runEvent(
  at: number,
  row: RunTable,
  action: string,
  details: Record<string, string>,
): NewAuditEvent {
  return {
    id: newEventId(),
    time: at,
    actor: row.id,
    collection: row.collection,
    action,
    target: row.id,
    fingerprint: '',
    details: JSON.stringify(details),
  };
}

/** Seals and writes one stream's messages in order. */
class Sender {
  private delivered = 0;
  private revoked = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly shared: Uint8Array;
  private runLog: Logger | undefined;

  constructor(
    private readonly deps: RunDeps,
    private readonly baseLog: Logger,
    private readonly call: Stream,
    private readonly row: RunTable,
    runKey: RunKey,
    /** The agent's key: the one bound to the run (a resume was refused unless it matched). */
    agentPublicKey: Uint8Array,
  ) {
    this.shared = sharedKey(agentPublicKey, runKey.secretKey);
  }

  /** The stream's logger, bound to its run and collection. */
  private get log(): Logger {
    this.runLog ??= this.baseLog.child({ run: this.row.id, collection: this.row.collection });
    return this.runLog;
  }

  /** Sends a bundle; the caller has recorded its delivery. */
  sendBundle(bundle: Bundle, log = true): void {
    this.send(
      Envelope.encode({ runId: this.row.id, body: { $case: 'bundle', value: bundle } }).finish(),
    );
    this.delivered = Math.max(this.delivered, bundle.version);
    // Debug: the run.deliver audit event records it, and a change reaches every stream.
    if (log) {
      this.log.debug(
        { version: bundle.version, entries: bundle.entries.length },
        'update delivered',
      );
    }
  }

  /** Sends the current bundle when it is newer than what the agent holds. */
  private async update(seenAt: number, collection: CollectionRow): Promise<void> {
    const bundle = await assembleBundle(this.deps, this.row, this.deps.bundles, collection);
    if (bundle.version <= this.delivered) return;
    const event = deliveryEvent(this.deps.now(), this.row, bundle);
    await this.deps.deliveries.record(this.row.id, bundle, event);
    this.sendBundle(bundle);
    this.deps.metrics.deliveries.inc({ kind: 'update' });
    this.deps.metrics.fanout.observe((performance.now() - seenAt) / 1000);
  }

  follow(): Promise<void> {
    const { deps, row } = this;
    return new Promise<void>((resolve) => {
      const cleanups: (() => void)[] = [];
      const stop = () => {
        for (const c of cleanups) c();
        resolve();
      };
      const enqueue = (work: () => Promise<void>) => {
        this.chain = this.chain.then(work).catch((err: unknown) => {
          fail(this.call, toStatus(err, this.log, ATTACH_METHOD));
          stop();
        });
      };
      cleanups.push(
        deps.watcher.watchCollection(row.collection, this.delivered, (collection) => {
          const seenAt = performance.now();
          enqueue(() => this.update(seenAt, collection));
        }),
      );
      cleanups.push(
        deps.watcher.watchRun(row.id, (state) => enqueue(() => this.revoke(state, stop))),
      );
      const heartbeat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
      cleanups.push(() => clearInterval(heartbeat));
      const ttl = setTimeout(
        () => enqueue(() => this.expire(stop)),
        Math.max(0, row.expires_at - deps.now()),
      );
      cleanups.push(() => clearTimeout(ttl));
      this.call.on('cancelled', stop);
      this.call.on('close', stop);
    });
  }

  /**
   * Sealed like every other message: the agent counts only what opens with the run's keys as
   * contact, so nobody on the path can keep it serving past --max-offline.
   */
  private heartbeat(): void {
    if (this.revoked) return;

    this.send(
      Envelope.encode({
        runId: this.row.id,
        body: { $case: 'heartbeat', value: { time: new Date(this.deps.now()) } },
      }).finish(),
    );
  }

  private async expire(stop: () => void): Promise<void> {
    if (await store.finishRun(this.deps.db, this.row.id, 'expired', this.deps.now())) {
      await auditRun(this.deps.db, this.deps.now(), this.row, 'run.expire', {});
    }
    await this.revoke('expired', stop);
  }

  private async revoke(reason: string, stop: () => void): Promise<void> {
    // The TTL timer and the watcher can both see the end; one revocation is sent.
    if (this.revoked) return;
    this.revoked = true;
    this.send(
      Envelope.encode({
        runId: this.row.id,
        body: { $case: 'revocation', value: { reason } },
      }).finish(),
    );
    this.deps.metrics.deliveries.inc({ kind: 'revocation' });
    await auditRun(this.deps.db, this.deps.now(), this.row, 'run.revoke', { reason });
    this.log.info({ reason }, 'revocation sent');
    this.call.end();
    stop();
  }

  private send(plaintext: Uint8Array): void {
    const sealed = sealWith(plaintext, this.shared);
    plaintext.fill(0);
    // Views of the sealed bytes, not copies: nothing else holds them.
    const value = { nonce: bufferView(sealed.nonce), box: bufferView(sealed.box) };
    this.call.write({ message: { $case: 'sealed', value } });
  }
}

const bufferView = (bytes: Uint8Array): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
