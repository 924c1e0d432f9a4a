import { openWith } from '../../common/sealing.js';
import { sharedKey } from '../crypto/native.js';
import { ApiError, invalid } from '../errors.js';
import { getRun } from '../store/runs.js';
import type { RunTable } from '../store/schema.js';
import { RUN_ID, type RunDeps } from './service.js';

/** A statement older (or further ahead) than this is refused, so a recorded one cannot replay. */
const STATEMENT_WINDOW_MS = 60_000;

interface Statement {
  runId: string;
  time?: Date | undefined;
}

/**
 * Opens what an agent sealed to the control plane (RefreshAccount, Report): the statement must
 * open under the run's bound agent key, decode, name that run and be recent. Every failure
 * reads the same (`refused`), so a caller learns nothing about which check failed.
 */
export async function openAgentStatement<T extends Statement>(
  deps: RunDeps,
  req: { runId: string; nonce: Uint8Array; box: Uint8Array },
  decode: (bytes: Uint8Array) => T,
  refused: string,
): Promise<{ run: RunTable; statement: T }> {
  if (!RUN_ID.test(req.runId)) {
    throw invalid('"run_id" must be a run id such as run_0123456789abcdef');
  }
  const run = await getRun(deps.db, req.runId);
  if (run === undefined || run.agent_public_key === null) {
    throw new ApiError('UNAUTHENTICATED', refused);
  }
  const runKey = await deps.runKeys.byId(run.run_key_id);
  if (runKey === undefined) throw new Error(`run key ${run.run_key_id} is missing`);
  let statement: T;
  try {
    const shared = sharedKey(Buffer.from(run.agent_public_key, 'base64'), runKey.secretKey);
    statement = decode(openWith(req, shared));
  } catch {
    // Whether it did not open or did not decode, the answer reads the same.
    throw new ApiError('UNAUTHENTICATED', refused);
  }
  const at = statement.time?.getTime() ?? 0;
  if (
    statement.runId !== run.id ||
    !Number.isFinite(at) ||
    Math.abs(deps.now() - at) > STATEMENT_WINDOW_MS
  ) {
    throw new ApiError('UNAUTHENTICATED', refused);
  }
  return { run, statement };
}
