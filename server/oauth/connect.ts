import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import * as oauth from 'oauth4webapi';
import type { Principal } from '../auth/principal.js';
import { type CollectionKeys, openValue, sealValue } from '../crypto/keyring.js';
import { ApiError, notFound, precondition } from '../errors.js';
import type { Logger } from '../logger.js';
import { accountTokensContext } from '../services/accounts.js';
import { audit, collectionKeys, type ServiceDeps } from '../services/deps.js';
import * as store from '../store/oauth.js';
import type { AccountTable, ConnectFlowTable, OAuthClientTable } from '../store/schema.js';
import { type Provider, providerFor } from './endpoints.js';
import { DiscoveryError, loggableError, tokensFrom } from './tokens.js';

/** A connect flow is abandoned after this long unless the provider says less (device codes). */
const FLOW_TTL_MS = 10 * 60_000;
/** RFC 8628 section 3.5: a slow_down answer adds five seconds to the polling interval. */
const SLOW_DOWN_S = 5;
const DEFAULT_INTERVAL_S = 5;
/** How often each process looks for device flows nobody polls (their poller stopped). */
const SWEEP_MS = 5_000;
/** Ended and expired flows are deleted a day after they expire. */
const KEEP_FLOWS_MS = 24 * 3600_000;

/** How long a poller's lease on a device flow lasts: two polls and some slack. */
const pollLeaseMs = (intervalS: number): number => intervalS * 2000 + 15_000;

export const flowContext = (collection: string, id: string): string =>
  `connect-flow:${collection}:${id}:secrets`;

const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

interface FlowSecrets {
  code_verifier?: string;
  state?: string;
  device_code?: string;
}

/** What a failed flow records: the provider's error code and a short description. */
function describe(err: unknown): string {
  const printable = (s: string | undefined, max: number) =>
    (s ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, max);
  if (err instanceof oauth.AuthorizationResponseError || err instanceof oauth.ResponseBodyError) {
    const text = printable(err.error_description, 200);
    return text === '' ? printable(err.error, 64) : `${printable(err.error, 64)}: ${text}`;
  }
  if (err instanceof oauth.OperationProcessingError) return printable(err.message, 200);
  if (err instanceof DiscoveryError) return 'authorization server metadata unavailable';
  return 'the provider could not be reached';
}

/**
 * Connecting accounts, through oauth4webapi:
 * - authorization code with PKCE S256, `state` and the RFC 9207 `iss` check: `start` stores the
 *   verifier and state sealed, and the HTTP listener's callback finishes the flow on whichever
 *   process it reaches;
 * - device authorization grant (RFC 8628): the process that started the flow polls the token
 *   endpoint, honouring `interval` and `slow_down`, until the user approves, denies or the
 *   code expires. It holds a lease on the flow, renewed at each poll; when it stops (released
 *   at once) or dies (the lease lapses), another process's sweep takes the flow over.
 * Either way the tokens are sealed into the account (made, or connected again) in one
 * transaction with the flow's end and an audit event, and the version bump sends them to
 * attached agents.
 */
export class Connector {
  private readonly polls = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly owner = `proc_${randomBytes(8).toString('hex')}`;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly log: Logger,
    private readonly redirectUri: () => string | undefined,
    /** Called after an account is connected, so attached agents get it at once. */
    private readonly changed: () => void = () => {},
  ) {}

  async start(
    principal: Principal,
    collection: string,
    name: string,
    clientName: string,
    method: 'authorization_code' | 'device',
  ): Promise<ConnectFlowTable> {
    const { db } = this.deps;
    const keys = await collectionKeys(this.deps, db, collection);
    const client = await store.getOAuthClient(db, collection, clientName);
    if (client === undefined) {
      throw notFound(`OAuth client "${clientName}" not found in collection "${collection}"`);
    }
    const existing = await store.getAccount(db, collection, name);
    if (existing !== undefined && existing.client !== clientName) {
      throw precondition(
        `account "${name}" is connected through OAuth client "${existing.client}"; ` +
          'connect it through that client, or delete it first',
      );
    }
    let provider: Provider;
    try {
      provider = await providerFor(client, keys);
    } catch (err) {
      this.log.warn(
        { err: loggableError(err), collection, client: clientName },
        'provider metadata unavailable',
      );
      throw new ApiError(
        'UNAVAILABLE',
        `the authorization server of OAuth client "${clientName}" could not be reached`,
      );
    }
    const id = `cf_${randomBytes(10).toString('hex')}`;
    const now = this.deps.now();
    const base: ConnectFlowTable = {
      id,
      collection,
      account: name,
      client: clientName,
      method,
      state: 'pending',
      state_hash: null,
      secrets_sealed: '',
      authorization_url: '',
      user_code: '',
      verification_uri: '',
      verification_uri_complete: '',
      interval_s: 0,
      expires_at: now + FLOW_TTL_MS,
      error: '',
      created_at: now,
      created_by: principal.tokenId,
      poll_owner: method === 'device' ? this.owner : null,
      poll_until: null,
    };
    const started =
      method === 'authorization_code'
        ? await this.startCode(base, provider, keys)
        : await this.startDevice(base, provider, keys);
    const flow: ConnectFlowTable =
      method === 'device'
        ? { ...started, poll_until: now + pollLeaseMs(started.interval_s) }
        : started;
    await db.transaction().execute(async (trx) => {
      await store.insertFlow(trx, flow);
      await audit(trx, this.deps, principal, {
        collection,
        action: 'connect.start',
        target: name,
        details: { client: clientName, method },
      });
    });
    if (method === 'device') this.track(this.pollDevice(flow, provider, keys));
    return flow;
  }

  private async startCode(
    flow: ConnectFlowTable,
    p: Provider,
    keys: CollectionKeys,
  ): Promise<ConnectFlowTable> {
    const redirectUri = this.redirectUri();
    if (redirectUri === undefined) {
      throw precondition(
        'the control plane has no HTTP listener for the OAuth callback: start it with ' +
          '--http-listen, or connect with the device flow',
      );
    }
    if (p.as.authorization_endpoint === undefined) {
      throw precondition(
        `OAuth client "${flow.client}" has no authorization endpoint: register one, or ` +
          'connect with the device flow',
      );
    }
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(p.as.authorization_endpoint);
    url.searchParams.set('client_id', p.client.client_id);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('response_type', 'code');
    if (p.config.scopes.length > 0) url.searchParams.set('scope', p.config.scopes.join(' '));
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('state', state);
    const secrets: FlowSecrets = { code_verifier: verifier, state };
    return {
      ...flow,
      state_hash: hashState(state),
      secrets_sealed: sealValue(
        keys,
        flowContext(flow.collection, flow.id),
        JSON.stringify(secrets),
      ),
      authorization_url: url.href,
    };
  }

  private async startDevice(
    flow: ConnectFlowTable,
    p: Provider,
    keys: CollectionKeys,
  ): Promise<ConnectFlowTable> {
    if (p.as.device_authorization_endpoint === undefined) {
      throw precondition(
        `OAuth client "${flow.client}" has no device authorization endpoint: register one, or ` +
          'connect with the authorization code flow',
      );
    }
    let d: oauth.DeviceAuthorizationResponse;
    try {
      const params: Record<string, string> = {};
      if (p.config.scopes.length > 0) params.scope = p.config.scopes.join(' ');
      const res = await oauth.deviceAuthorizationRequest(p.as, p.client, p.auth, params, p.http());
      d = await oauth.processDeviceAuthorizationResponse(p.as, p.client, res);
    } catch (err) {
      this.log.warn(
        { err, collection: flow.collection, client: flow.client },
        'device start failed',
      );
      throw precondition(`the provider refused the device authorization: ${describe(err)}`);
    }
    const secrets: FlowSecrets = { device_code: d.device_code };
    return {
      ...flow,
      secrets_sealed: sealValue(
        keys,
        flowContext(flow.collection, flow.id),
        JSON.stringify(secrets),
      ),
      user_code: d.user_code,
      verification_uri: d.verification_uri,
      verification_uri_complete: d.verification_uri_complete ?? '',
      interval_s: d.interval ?? DEFAULT_INTERVAL_S,
      expires_at: Math.min(flow.created_at + d.expires_in * 1000, flow.created_at + FLOW_TTL_MS),
    };
  }

  /**
   * The authorization response reaching the HTTP listener. Returns what the admin's browser is
   * shown: never a token, never the code.
   */
  async callback(params: URLSearchParams): Promise<{ status: number; message: string }> {
    const { db } = this.deps;
    const state = params.get('state');
    if (state === null) return { status: 400, message: 'The response carries no state.' };
    const flow = await store.getFlowByState(db, hashState(state));
    if (flow === undefined || flow.state !== 'pending') {
      return { status: 400, message: 'This sign-in is unknown or already finished.' };
    }
    if (flow.expires_at < this.deps.now()) {
      await store.finishFlow(db, flow.id, 'failed', 'the flow expired before the callback came');
      return { status: 400, message: 'This sign-in expired; start it again.' };
    }
    const keys = await collectionKeys(this.deps, db, flow.collection);
    const secrets = this.secrets(flow, keys);
    try {
      const client = await this.client(flow);
      const p = await providerFor(client, keys);
      const validated = oauth.validateAuthResponse(p.as, p.client, params, secrets.state);
      const res = await oauth.authorizationCodeGrantRequest(
        p.as,
        p.client,
        p.auth,
        validated,
        this.redirectUri() ?? '',
        secrets.code_verifier ?? '',
        p.http(),
      );
      const body = await oauth.processAuthorizationCodeResponse(p.as, p.client, res);
      const sentAt = this.deps.now();
      if (!(await this.connected(flow, keys, body, sentAt))) {
        return { status: 409, message: 'This sign-in was already finished.' };
      }
      return {
        status: 200,
        message: `Account "${flow.account}" is connected. You can close this page.`,
      };
    } catch (err) {
      const why = describe(err);
      this.log.warn(
        { err: loggableError(err), collection: flow.collection, flow: flow.id },
        'connect failed',
      );
      await this.failed(flow, why);
      return { status: 400, message: `Connecting failed: ${why}` };
    }
  }

  private async pollDevice(
    flow: ConnectFlowTable,
    p: Provider,
    keys: CollectionKeys,
  ): Promise<void> {
    const { db } = this.deps;
    const deviceCode = this.secrets(flow, keys).device_code ?? '';
    let interval = flow.interval_s;
    for (;;) {
      if (!(await this.sleep(interval * 1000))) return;
      const until = this.deps.now() + pollLeaseMs(interval);
      // Ended, or another process took it over: stop.
      if (!(await store.renewFlowPoll(db, flow.id, this.owner, until))) return;
      const now = await store.getFlow(db, flow.collection, flow.id);
      if (now === undefined || now.state !== 'pending') return;
      if (this.deps.now() > flow.expires_at) {
        await this.failed(flow, 'expired_token: the user code expired before it was approved');
        return;
      }
      const sentAt = this.deps.now();
      try {
        const res = await oauth.deviceCodeGrantRequest(
          p.as,
          p.client,
          p.auth,
          deviceCode,
          p.http(),
        );
        const body = await oauth.processDeviceCodeResponse(p.as, p.client, res);
        await this.connected(flow, keys, body, sentAt);
        return;
      } catch (err) {
        if (err instanceof oauth.ResponseBodyError) {
          if (err.error === 'authorization_pending') continue;
          if (err.error === 'slow_down') {
            interval += SLOW_DOWN_S;
            await store.setFlowInterval(db, flow.id, interval);
            continue;
          }
          await this.failed(flow, describe(err));
          return;
        }
        // The network or the provider may come back before the code expires.
        this.log.warn(
          { err: loggableError(err), collection: flow.collection, flow: flow.id },
          'device poll failed',
        );
      }
    }
  }

  /** Stores the tokens and ends the flow; false when the flow had already ended. */
  private async connected(
    flow: ConnectFlowTable,
    keys: CollectionKeys,
    body: oauth.TokenEndpointResponse,
    sentAt: number,
  ): Promise<boolean> {
    const { collection, account } = flow;
    const next = tokensFrom(body, '');
    const now = this.deps.now();
    const fields = {
      status: 'connected',
      scopes: next.scope ?? '',
      tokens_sealed: sealValue(
        keys,
        accountTokensContext(collection, account),
        JSON.stringify(next.tokens),
      ),
      refresh_token_set: next.tokens.refresh_token === '' ? 0 : 1,
      access_expires_at: sentAt + next.lifetimeS * 1000,
      lifetime_ms: next.lifetimeS * 1000,
      last_refresh_at: now,
      last_error: '',
      updated_at: now,
      next_attempt_at: null,
      failures: 0,
      lease_owner: null,
      lease_until: null,
      lease_taken_over: 0,
    } satisfies Partial<AccountTable>;
    const done = await this.deps.db.transaction().execute(async (trx) => {
      if (!(await store.finishFlow(trx, flow.id, 'connected', ''))) return false;
      const existing = await store.getAccount(trx, collection, account);
      if (existing === undefined) {
        await store.insertAccount(trx, {
          collection,
          name: account,
          client: flow.client,
          created_at: now,
          created_by: flow.created_by,
          fence: 0,
          ...fields,
        });
      } else {
        // A refresh still in flight under the old grant must not overwrite the new one.
        await trx
          .updateTable('accounts')
          .set({ ...fields, fence: sql`fence + 1` })
          .where('collection', '=', collection)
          .where('name', '=', account)
          .execute();
      }
      await audit(
        trx,
        this.deps,
        { tokenId: flow.created_by, role: 'admin', collection },
        {
          collection,
          action: 'account.connect',
          target: account,
          details: {
            client: flow.client,
            method: flow.method,
            again: String(existing !== undefined),
          },
        },
      );
      return true;
    });
    if (done) {
      this.changed();
      this.log.info({ collection, account, method: flow.method }, 'account connected');
    }
    return done;
  }

  private async failed(flow: ConnectFlowTable, why: string): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      if (!(await store.finishFlow(trx, flow.id, 'failed', why))) return;
      await audit(
        trx,
        this.deps,
        { tokenId: flow.created_by, role: 'admin', collection: null },
        {
          collection: flow.collection,
          action: 'connect.fail',
          target: flow.account,
          details: { client: flow.client, method: flow.method, error: why },
        },
      );
    });
  }

  private secrets(flow: ConnectFlowTable, keys: CollectionKeys): FlowSecrets {
    return JSON.parse(
      openValue(keys, flowContext(flow.collection, flow.id), flow.secrets_sealed),
    ) as FlowSecrets;
  }

  private async client(flow: ConnectFlowTable): Promise<OAuthClientTable> {
    const row = await store.getOAuthClient(this.deps.db, flow.collection, flow.client);
    if (row === undefined) throw new Error(`OAuth client ${flow.client} is gone`);
    return row;
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) =>
      this.log.error({ err: loggableError(err) }, 'device flow poll failed'),
    );
    this.polls.add(guarded);
    void guarded.finally(() => this.polls.delete(guarded));
  }

  /** Waits; false when the connector is closing. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve(false);
      const timer = setTimeout(() => resolve(true), ms);
      this.abort.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  /** Starts the sweep that takes over device flows nobody polls, and prunes old flows. */
  startSweeping(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** One pass of the sweep; resolves to the flows this process took over. */
  async sweep(): Promise<number> {
    if (this.sweeping || this.abort.signal.aborted) return 0;
    this.sweeping = true;
    let taken = 0;
    try {
      const { db } = this.deps;
      const now = this.deps.now();
      await store.pruneFlows(db, now - KEEP_FLOWS_MS);
      for (const flow of await store.unpolledDeviceFlows(db, now)) {
        if (now > flow.expires_at) {
          await this.failed(flow, 'expired_token: the user code expired before it was approved');
          continue;
        }
        const until = now + pollLeaseMs(flow.interval_s);
        if (!(await store.takeFlowPoll(db, flow.id, this.owner, now, until))) continue;
        let provider: Provider;
        let keys: CollectionKeys;
        try {
          keys = await collectionKeys(this.deps, db, flow.collection);
          provider = await providerFor(await this.client(flow), keys);
        } catch (err) {
          // Another process, or this one at its next sweep, tries again.
          this.log.warn(
            { err: loggableError(err), collection: flow.collection, flow: flow.id },
            'device flow not taken over',
          );
          await store.releaseFlowPolls(db, this.owner, flow.id);
          continue;
        }
        this.log.info({ collection: flow.collection, flow: flow.id }, 'device flow taken over');
        this.track(this.pollDevice(flow, provider, keys));
        taken++;
      }
    } catch (err) {
      this.log.error({ err: loggableError(err) }, 'connect flow sweep failed');
    } finally {
      this.sweeping = false;
    }
    return taken;
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.abort.abort();
    await Promise.allSettled([...this.polls]);
    // Another process takes these flows over at its next sweep rather than when they lapse.
    try {
      await store.releaseFlowPolls(this.deps.db, this.owner);
    } catch (err) {
      this.log.warn({ err: loggableError(err) }, 'device flow leases not released');
    }
  }
}
