import type { handleUnaryCall } from '@grpc/grpc-js';
import { openWith, sharedKey } from '../../common/sealing.js';
import {
  type RefreshAccountRequest,
  type RefreshAccountResponse,
  RefreshAccountStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { ApiError, invalid, precondition } from '../errors.js';
import { refuseUndecodable, toStatus } from '../grpc/adapter.js';
import type { Logger } from '../logger.js';
import { getAccount, getOAuthClient } from '../store/oauth.js';
import { getRun } from '../store/runs.js';
import { quote } from '../validate/common.js';
import type { ClientConfig } from '../validate/oauth.js';
import { effectiveState, RUN_ID, type RunDeps } from './service.js';

/** A statement older (or further ahead) than this is refused, so a recorded one cannot replay. */
const STATEMENT_WINDOW_MS = 60_000;
const METHOD = 'runkeys.v1.AgentService/RefreshAccount';
const REFUSED = 'refresh refused: the request does not open under the key this run is bound to';

/**
 * An agent asking for one of its accounts to be refreshed:
 * 1. the statement must open under the run's bound agent key and name that run, and be recent;
 * 2. the run must be attached and receive the account (a tool account of its collection, or
 *    the account its runtime names);
 * 3. the refresher refreshes it if it is due; the new token reaches the agent on its stream.
 */
export function refreshAskHandler(
  deps: RunDeps,
  log: Logger,
): handleUnaryCall<RefreshAccountRequest, RefreshAccountResponse> {
  return (call, callback) => {
    ask(deps, call.request).then(
      () => callback(null, {}),
      (err: unknown) => callback(toStatus(err, log, METHOD)),
    );
  };
}

async function ask(deps: RunDeps, req: RefreshAccountRequest): Promise<void> {
  refuseUndecodable(req);
  if (!RUN_ID.test(req.runId)) {
    throw invalid('"run_id" must be a run id such as run_0123456789abcdef');
  }
  // 1.
  const run = await getRun(deps.db, req.runId);
  if (run === undefined || run.agent_public_key === null) {
    throw new ApiError('UNAUTHENTICATED', REFUSED);
  }
  const runKey = await deps.runKeys.byId(run.run_key_id);
  if (runKey === undefined) throw new Error(`run key ${run.run_key_id} is missing`);
  let statement: RefreshAccountStatement;
  try {
    const shared = sharedKey(Buffer.from(run.agent_public_key, 'base64'), runKey.secretKey);
    statement = RefreshAccountStatement.decode(openWith(req, shared));
  } catch {
    // Whether it did not open or did not decode, the answer reads the same.
    throw new ApiError('UNAUTHENTICATED', REFUSED);
  }
  const at = statement.time?.getTime() ?? 0;
  if (
    statement.runId !== run.id ||
    !Number.isFinite(at) ||
    Math.abs(deps.now() - at) > STATEMENT_WINDOW_MS
  ) {
    throw new ApiError('UNAUTHENTICATED', REFUSED);
  }
  // 2.
  if (effectiveState(run, deps.now()) !== 'attached') {
    throw precondition(`run ${run.id} is not attached`);
  }
  const account = await getAccount(deps.db, run.collection, statement.account);
  const client =
    account === undefined
      ? undefined
      : await getOAuthClient(deps.db, run.collection, account.client);
  const provider = client === undefined ? '' : (JSON.parse(client.config) as ClientConfig).provider;
  const receives =
    account !== undefined &&
    client !== undefined &&
    (provider === '' || (run.auth === 'account' && run.account === account.name));
  if (!receives) {
    throw precondition(`run ${run.id} receives no account named ${quote(statement.account)}`);
  }
  // 3.
  await deps.refresher.refresh(run.collection, statement.account);
}
