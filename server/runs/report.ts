import type { handleUnaryCall } from '@grpc/grpc-js';
import {
  type Leak,
  type Receipt,
  type ReportRequest,
  type ReportResponse,
  ReportStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { invalid } from '../errors.js';
import { refuseUndecodable, toStatus } from '../grpc/adapter.js';
import type { Logger } from '../logger.js';
import { insertAuditEvent } from '../store/audit.js';
import {
  addLeaks,
  advanceReportSequence,
  bundleContents,
  insertReceipts,
} from '../store/reports.js';
import type { RunLeakTable, RunReceiptTable } from '../store/schema.js';
import { quote } from '../validate/common.js';
import { openAgentStatement } from './agent-statement.js';
import { runEvent } from './attach.js';
import type { RunDeps } from './service.js';

const METHOD = 'runkeys.v1.AgentService/Report';
const REFUSED = 'report refused: it does not open under the key this run is bound to';
export const MAX_RECEIPTS = 64;
export const MAX_LEAKS = 256;
export const STREAMS = ['stdout', 'stderr', 'trajectory'] as const;
const DIGEST = /^b_[0-9a-f]{32}$/;
const FINGERPRINT = /^hmac:[0-9a-f]{32}$/;
const MAX_NAME = 1024;

/**
 * An agent's report of what it applied and what its scrubber replaced:
 * 1. the statement opens under the run's bound agent key (openAgentStatement), within the
 *    run's report rate;
 * 2. its contents are checked whole before anything is written;
 * 3. its number must be the next one: a report the run already gave (a retry whose answer was
 *    lost) is acknowledged and not counted again;
 * 4. in one transaction: the number, the receipts (a `run.receipt` audit event each), the leak
 *    counts added up (a `run.leak` audit event the first time a value shows up in a stream of
 *    the run; after that only its count grows, so a run that prints its key a million times
 *    costs a counter, not a million events);
 * 5. the metrics.
 * The run may have ended: an agent reports what its command printed up to its exit.
 */
export function reportHandler(
  deps: RunDeps,
  log: Logger,
): handleUnaryCall<ReportRequest, ReportResponse> {
  return (call, callback) => {
    take(deps, call.request).then(
      () => callback(null, {}),
      (err: unknown) => callback(toStatus(err, log, METHOD)),
    );
  };
}

async function take(deps: RunDeps, req: ReportRequest): Promise<void> {
  refuseUndecodable(req);
  // 1.
  const { run, statement } = await openAgentStatement(
    deps,
    req,
    (b) => ReportStatement.decode(b),
    REFUSED,
  );
  deps.limits.checkReport(run.id);
  // 2.
  const { sequence, receipts, leaks } = statement;
  if (!Number.isSafeInteger(sequence) || sequence < 1) {
    throw invalid(`"sequence" must be a positive integer; got ${sequence}`);
  }
  if (receipts.length > MAX_RECEIPTS) {
    throw invalid(`"receipts" must hold at most ${MAX_RECEIPTS}; got ${receipts.length}`);
  }
  if (leaks.length > MAX_LEAKS) {
    throw invalid(`"leaks" must hold at most ${MAX_LEAKS}; got ${leaks.length}`);
  }
  const now = deps.now();
  const receiptRows = receipts.map((r) => receiptRow(r, run.id, run.collection, now));
  for (const r of receiptRows) {
    if (r.version > Number(run.delivered_version)) {
      throw invalid(
        `"receipts.version" ${r.version} was never delivered to run ${run.id} ` +
          `(last delivered: ${run.delivered_version})`,
      );
    }
  }
  const digests = [...new Set(receiptRows.map((r) => r.digest))];
  const known = await bundleContents(deps.db, run.collection, digests);
  const unknown = digests.find((d) => !known.some((k) => k.digest === d));
  if (unknown !== undefined) {
    throw invalid(`"receipts.digest" ${unknown} names no bundle of collection ${run.collection}`);
  }
  const leakRows = mergeLeaks(leaks.map((l) => leakRow(l, run.id, now)));
  // 3. and 4.
  const taken = await deps.db.transaction().execute(async (trx) => {
    if (!(await advanceReportSequence(trx, run.id, sequence))) return false;
    await insertReceipts(trx, receiptRows);
    const fresh = await addLeaks(trx, leakRows);
    const events = [
      ...receiptRows.map((r) =>
        runEvent(now, run, 'run.receipt', {
          version: String(r.version),
          digest: r.digest,
          apply_time: new Date(r.applied_at).toISOString(),
          env_file: String(r.env_file === 1),
          command: String(r.command === 1),
        }),
      ),
      ...fresh.map((l) => ({
        ...runEvent(now, run, 'run.leak', {
          name: l.name,
          stream: l.stream,
          count: String(l.count),
        }),
        fingerprint: l.fingerprint,
      })),
    ];
    if (events.length > 0) await insertAuditEvent(trx, events);
    return true;
  });
  if (!taken) return;
  // 5.
  deps.metrics.receipts.inc(receiptRows.length);
  for (const l of leakRows) deps.metrics.leaks.inc({ stream: l.stream }, l.count);
}

function receiptRow(r: Receipt, runId: string, collection: string, now: number): RunReceiptTable {
  if (!Number.isSafeInteger(r.version) || r.version < 1) {
    throw invalid(`"receipts.version" must be a positive integer; got ${r.version}`);
  }
  if (!DIGEST.test(r.digest)) {
    throw invalid(`"receipts.digest" must be a bundle digest such as b_ and 32 hex digits`);
  }
  const at = r.applyTime?.getTime() ?? Number.NaN;
  if (!Number.isFinite(at)) throw invalid('"receipts.apply_time" must be a valid time');
  return {
    run_id: runId,
    collection,
    version: r.version,
    digest: r.digest,
    applied_at: at,
    received_at: now,
    env_file: r.envFileWritten ? 1 : 0,
    command: r.commandStarted ? 1 : 0,
  };
}

function leakRow(l: Leak, runId: string, now: number): RunLeakTable {
  if (l.name === '' || l.name.length > MAX_NAME || l.name.includes('\0')) {
    throw invalid(`"leaks.name" must be 1 to ${MAX_NAME} characters without NUL`);
  }
  if (!(STREAMS as readonly string[]).includes(l.stream)) {
    throw invalid(`"leaks.stream" must be one of ${STREAMS.join(', ')}; got ${quote(l.stream)}`);
  }
  if (!Number.isSafeInteger(l.count) || l.count < 1) {
    throw invalid(`"leaks.count" must be a positive integer; got ${l.count}`);
  }
  if (!FINGERPRINT.test(l.fingerprint)) {
    throw invalid('"leaks.fingerprint" must be "hmac:" and 32 hex digits, as the bundle gave it');
  }
  return {
    run_id: runId,
    name: l.name,
    stream: l.stream,
    fingerprint: l.fingerprint,
    count: l.count,
    first_at: now,
    last_at: now,
  };
}

/** One row per (name, stream, fingerprint): a statement may repeat one. */
function mergeLeaks(rows: RunLeakTable[]): RunLeakTable[] {
  const byKey = new Map<string, RunLeakTable>();
  for (const r of rows) {
    const key = `${r.name}\0${r.stream}\0${r.fingerprint}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, { ...r });
    else seen.count = Math.min(Number.MAX_SAFE_INTEGER, seen.count + r.count);
  }
  return [...byKey.values()];
}
