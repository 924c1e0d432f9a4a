import {
  AccountStatus,
  type ConnectedAccount,
  type ConnectedAccountServiceServer,
  type TokenSet,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { authorize } from '../auth/principal.js';
import { fingerprintValue, sealValue } from '../crypto/keyring.js';
import { conflict, invalid, notFound } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import * as store from '../store/oauth.js';
import type { AccountTable } from '../store/schema.js';
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

/** The sealed token set of an account. */
export interface StoredTokens {
  access_token: string;
  refresh_token: string;
  extra: Record<string, string>;
}

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

export function accountHandlers(deps: ServiceDeps): Handlers<ConnectedAccountServiceServer> {
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
      await db.transaction().execute(async (trx) => {
        await collectionKeys(deps, trx, collection);
        if (!(await store.deleteAccount(trx, collection, name))) throw missing(collection, name);
        await audit(trx, deps, principal, {
          collection,
          action: 'account.delete',
          target: name,
        });
      });
      return {};
    },
  };
}
