import * as oauth4 from 'oauth4webapi';
import {
  AccountStatus,
  type ConnectedAccount,
  type ConnectedAccountServiceServer,
  type ConnectFlow,
  ConnectMethod,
  ConnectState,
  type TokenSet,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { authorize } from '../auth/principal.js';
import { type CollectionKeys, fingerprintValue, openValue, sealValue } from '../crypto/keyring.js';
import { conflict, invalid, notFound, precondition } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import type { Connector } from '../oauth/connect.js';
import { providerFor } from '../oauth/endpoints.js';
import type { Refresher } from '../oauth/refresh.js';
import type { StoredTokens } from '../oauth/tokens.js';
import * as store from '../store/oauth.js';
import type { AccountTable, ConnectFlowTable } from '../store/schema.js';
import { quote, resourceName } from '../validate/common.js';
import { scopeTokens } from '../validate/oauth.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, collectionKeys, optionalDate, type ServiceDeps, toDate } from './deps.js';

export const accountTokensContext = (collection: string, name: string): string =>
  `account:${collection}:${name}:tokens`;

/** Account status as stored; the wire enum maps from it. */
export type AccountState = 'connected' | 'refresh_failing' | 'needs_reconnect';

const STATUS: Record<AccountState, AccountStatus> = {
  connected: AccountStatus.ACCOUNT_STATUS_CONNECTED,
  refresh_failing: AccountStatus.ACCOUNT_STATUS_REFRESH_FAILING,
  needs_reconnect: AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT,
};

const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;
const MAX_EXTRA = 32;

function toAccount(row: AccountTable): ConnectedAccount {
  return {
    collection: row.collection,
    name: row.name,
    client: row.client,
    status: STATUS[row.status as AccountState] ?? AccountStatus.ACCOUNT_STATUS_UNSPECIFIED,
    scopes: row.scopes === '' ? [] : row.scopes.split(' '),
    refreshTokenSet: row.refresh_token_set === 1,
    accessTokenExpireTime: optionalDate(row.access_expires_at),
    lastRefreshTime: optionalDate(row.last_refresh_at),
    lastError: row.last_error,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
    createdBy: row.created_by,
  };
}

function tokenText(field: string, value: string, isRequired: boolean): string {
  if (value === '' && isRequired) throw invalid(`"${field}" is required`);

  if (value.length > MAX_TOKEN_CHARS) {
    throw invalid(`"${field}" must be at most ${MAX_TOKEN_CHARS} characters`);
  }

  if (/[\s\0]/.test(value)) throw invalid(`"${field}" must not contain whitespace or NUL bytes`);
  return value;
}

function checkTokens(t: TokenSet | undefined): StoredTokens & { expiresIn: number; scope: string } {
  if (t === undefined) throw invalid('"tokens" is required');

  if (!Number.isInteger(t.expiresIn) || t.expiresIn < 0 || t.expiresIn > MAX_EXPIRES_IN) {
    throw invalid(
      `"tokens.expires_in" must be between 0 and ${MAX_EXPIRES_IN} seconds; got ${t.expiresIn}`,
    );
  }

  const extra = Object.entries(t.extra ?? {});
  if (extra.length > MAX_EXTRA) throw invalid(`"tokens.extra" must hold at most ${MAX_EXTRA}`);
  for (const [k, v] of extra) {
    if (!/^[A-Za-z0-9_]{1,64}$/.test(k) || k === 'refresh_token' || k === 'access_token') {
      throw invalid(
        '"tokens.extra" keys must match ^[A-Za-z0-9_]{1,64}$ and be neither access_token nor ' +
          `refresh_token; got ${quote(k)}`,
      );
    }
    tokenText(`tokens.extra.${k}`, v, true);
  }
  return {
    access_token: tokenText('tokens.access_token', t.accessToken, true),
    refresh_token: tokenText('tokens.refresh_token', t.refreshToken, false),
    extra: Object.fromEntries(extra),
    expiresIn: t.expiresIn,
    scope: scopeTokens('tokens.scope', t.scope.split(' ').filter(Boolean)).join(' '),
  };
}

export interface AccountDeps extends ServiceDeps {
  refresher: Refresher;
  connector: Connector;
}

export function accountHandlers(deps: AccountDeps): Handlers<ConnectedAccountServiceServer> {
  const oauth = deps;
  const { db } = deps;
  const missing = (collection: string, name: string) =>
    notFound(`account "${name}" not found in collection "${collection}"`);

  return {
    async createConnectedAccount(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      const client = resourceName('client', req.client);
      const tokens = checkTokens(req.tokens);
      const row = await db.transaction().execute(async (trx) => {
        const keys = await collectionKeys(deps, trx, collection);
        if ((await store.getOAuthClient(trx, collection, client)) === undefined) {
          throw notFound(`OAuth client "${client}" not found in collection "${collection}"`);
        }
        if ((await store.getAccount(trx, collection, name)) !== undefined) {
          throw conflict(`account "${name}" already exists in collection "${collection}"`);
        }
        const now = deps.now();
        const sealed: StoredTokens = {
          access_token: tokens.access_token,
          refresh_token: tokens.refresh_token,
          extra: tokens.extra,
        };
        const created: AccountTable = {
          collection,
          name,
          client,
          status: 'connected',
          scopes: tokens.scope,
          tokens_sealed: sealValue(
            keys,
            accountTokensContext(collection, name),
            JSON.stringify(sealed),
          ),
          refresh_token_set: tokens.refresh_token === '' ? 0 : 1,
          access_expires_at: tokens.expiresIn === 0 ? null : now + tokens.expiresIn * 1000,
          last_refresh_at: null,
          last_error: '',
          created_at: now,
          updated_at: now,
          created_by: principal.tokenId,
          lifetime_ms: tokens.expiresIn === 0 ? null : tokens.expiresIn * 1000,
          fence: 0,
          lease_owner: null,
          lease_until: null,
          lease_taken_over: 0,
          next_attempt_at: null,
          failures: 0,
        };
        await store.insertAccount(trx, created);
        await audit(trx, deps, principal, {
          collection,
          action: 'account.import',
          target: name,
          fingerprint: fingerprintValue(keys, tokens.access_token),
          details: { client },
        });
        return created;
      });
      return { account: toAccount(row) };
    },

    async getConnectedAccount(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const name = resourceName('name', req.name);
      await collectionKeys(deps, db, collection);
      const row = await store.getAccount(db, collection, name);
      if (row === undefined) throw missing(collection, name);
      return { account: toAccount(row) };
    },

    async listConnectedAccounts(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const scope = `accounts:${collection}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      await collectionKeys(deps, db, collection);
      const rows = await store.listAccounts(db, collection, page.after, page.size);
      return {
        accounts: rows.map(toAccount),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.name),
        ),
      };
    },

    async deleteConnectedAccount(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      const keys = await collectionKeys(deps, db, collection);
      const row = await store.getAccount(db, collection, name);
      if (row === undefined) throw missing(collection, name);
      const revoked = await revokeAtProvider(deps, row, keys);
      await db.transaction().execute(async (trx) => {
        if (!(await store.deleteAccount(trx, collection, name))) throw missing(collection, name);
        await audit(trx, deps, principal, {
          collection,
          action: 'account.delete',
          target: name,
          details: { revoked },
        });
      });
      return {};
    },

    async startConnect(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      const client = resourceName('client', req.client);
      const method = CONNECT_METHODS[req.method];
      if (method === undefined) {
        throw invalid(
          '"method" must be CONNECT_METHOD_AUTHORIZATION_CODE or CONNECT_METHOD_DEVICE',
        );
      }
      const flow = await oauth.connector.start(principal, collection, name, client, method);
      return { flow: toFlow(flow) };
    },

    async getConnectFlow(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      if (!/^cf_[0-9a-f]{20}$/.test(req.id)) {
        throw invalid(
          `"id" must be a connect flow id (cf_ and 20 hex digits); got ${quote(req.id)}`,
        );
      }
      await collectionKeys(deps, db, collection);
      const flow = await store.getFlow(db, collection, req.id);
      if (flow === undefined) {
        throw notFound(`connect flow ${req.id} not found in collection "${collection}"`);
      }
      return { flow: toFlow(flow) };
    },

    async refreshConnectedAccount(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      await collectionKeys(deps, db, collection);
      const outcome = await oauth.refresher.refresh(collection, name, true);
      if (outcome === 'gone') throw missing(collection, name);
      if (outcome === 'needs_reconnect') {
        throw precondition(
          `account "${name}" needs reconnecting: runkeys accounts connect --collection ` +
            `${collection} --name ${name} CLIENT`,
        );
      }
      if (outcome === 'no_refresh_token') {
        throw precondition(`account "${name}" has no refresh token; connect or import it again`);
      }
      const row = await store.getAccount(db, collection, name);
      if (row === undefined) throw missing(collection, name);
      return { account: toAccount(row) };
    },
  };
}

const CONNECT_METHODS: Partial<Record<ConnectMethod, 'authorization_code' | 'device'>> = {
  [ConnectMethod.CONNECT_METHOD_AUTHORIZATION_CODE]: 'authorization_code',
  [ConnectMethod.CONNECT_METHOD_DEVICE]: 'device',
};

const FLOW_STATE: Record<ConnectFlowTable['state'], ConnectState> = {
  pending: ConnectState.CONNECT_STATE_PENDING,
  connected: ConnectState.CONNECT_STATE_CONNECTED,
  failed: ConnectState.CONNECT_STATE_FAILED,
};

function toFlow(row: ConnectFlowTable): ConnectFlow {
  return {
    id: row.id,
    collection: row.collection,
    account: row.account,
    client: row.client,
    method:
      row.method === 'device'
        ? ConnectMethod.CONNECT_METHOD_DEVICE
        : ConnectMethod.CONNECT_METHOD_AUTHORIZATION_CODE,
    state: FLOW_STATE[row.state],
    authorizationUrl: row.authorization_url,
    userCode: row.user_code,
    verificationUri: row.verification_uri,
    verificationUriComplete: row.verification_uri_complete,
    interval: row.interval_s,
    expireTime: toDate(row.expires_at),
    error: row.error,
  };
}

/**
 * RFC 7009: revokes the refresh token (or the access token when there is none) where the
 * provider has a revocation endpoint. Returns what happened, for the audit event; a failure
 * does not stop the delete, since the tokens are deleted either way.
 */
async function revokeAtProvider(
  deps: ServiceDeps,
  row: AccountTable,
  keys: CollectionKeys,
): Promise<'yes' | 'unsupported' | 'failed'> {
  try {
    const client = await store.getOAuthClient(deps.db, row.collection, row.client);
    if (client === undefined) return 'unsupported';
    const p = await providerFor(client, keys);
    if (p.as.revocation_endpoint === undefined) return 'unsupported';
    const held = JSON.parse(
      openValue(keys, accountTokensContext(row.collection, row.name), row.tokens_sealed),
    ) as StoredTokens;
    const token = held.refresh_token !== '' ? held.refresh_token : held.access_token;
    const res = await oauth4.revocationRequest(p.as, p.client, p.auth, token, p.http());
    await oauth4.processRevocationResponse(res);
    return 'yes';
  } catch {
    return 'failed';
  }
}
