import type { handleUnaryCall } from '@grpc/grpc-js';
import {
  type RefreshAccountRequest,
  type RefreshAccountResponse,
  RefreshAccountStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { precondition } from '../errors.js';
import { refuseUndecodable, toStatus } from '../grpc/adapter.js';
import type { Logger } from '../logger.js';
import { getAccount, getOAuthClient } from '../store/oauth.js';
import { quote } from '../validate/common.js';
import type { ClientConfig } from '../validate/oauth.js';
import { openAgentStatement } from './agent-statement.js';
import { effectiveState, type RunDeps } from './service.js';

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
  // 1.
  const { run, statement } = await openAgentStatement(
    deps,
    req,
    (b) => RefreshAccountStatement.decode(b),
    REFUSED,
  );
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
