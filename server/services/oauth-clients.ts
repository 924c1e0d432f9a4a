import type { OAuthClient, OAuthClientServiceServer } from '../../proto/gen/runkeys/v1/oauth.js';
import { authorize } from '../auth/principal.js';
import { sealValue } from '../crypto/keyring.js';
import { conflict, notFound, precondition } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import * as store from '../store/oauth.js';
import type { OAuthClientTable } from '../store/schema.js';
import { resourceName } from '../validate/common.js';
import { type ClientConfig, checkClientInput, clientSecret } from '../validate/oauth.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, collectionKeys, type ServiceDeps, toDate } from './deps.js';

export const clientSecretContext = (collection: string, name: string): string =>
  `oauth-client:${collection}:${name}:secret`;

function toOAuthClient(row: OAuthClientTable): OAuthClient {
  const c = JSON.parse(row.config) as ClientConfig;
  return {
    collection: row.collection,
    name: row.name,
    issuer: c.issuer,
    authorizationEndpoint: c.authorization_endpoint,
    tokenEndpoint: c.token_endpoint,
    deviceAuthorizationEndpoint: c.device_authorization_endpoint,
    revocationEndpoint: c.revocation_endpoint,
    clientId: c.client_id,
    clientSecretSet: row.client_secret_sealed !== null,
    tokenEndpointAuthMethod: c.token_endpoint_auth_method,
    scopes: c.scopes,
    injection: c.injection,
    provider: c.provider ?? '',
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
    createdBy: row.created_by,
    updatedBy: row.updated_by,
  };
}

const missing = (collection: string, name: string) =>
  notFound(`OAuth client "${name}" not found in collection "${collection}"`);

export function oauthClientHandlers(deps: ServiceDeps): Handlers<OAuthClientServiceServer> {
  const { db } = deps;
  return {
    async createOAuthClient(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      const secret = clientSecret(req.client?.clientSecret ?? '');
      const config = checkClientInput(req.client, secret !== '');
      const row = await db.transaction().execute(async (trx) => {
        const keys = await collectionKeys(deps, trx, collection);
        if ((await store.getOAuthClient(trx, collection, name)) !== undefined) {
          throw conflict(`OAuth client "${name}" already exists in collection "${collection}"`);
        }
        const now = deps.now();
        const created: OAuthClientTable = {
          collection,
          name,
          config: JSON.stringify(config),
          client_secret_sealed:
            secret === '' ? null : sealValue(keys, clientSecretContext(collection, name), secret),
          created_at: now,
          updated_at: now,
          created_by: principal.tokenId,
          updated_by: principal.tokenId,
        };
        await store.insertOAuthClient(trx, created);
        await audit(trx, deps, principal, {
          collection,
          action: 'oauth_client.create',
          target: name,
          details: { auth_method: config.token_endpoint_auth_method },
        });
        return created;
      });
      return { oauthClient: toOAuthClient(row) };
    },

    async getOAuthClient(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const name = resourceName('name', req.name);
      await collectionKeys(deps, db, collection);
      const row = await store.getOAuthClient(db, collection, name);
      if (row === undefined) throw missing(collection, name);
      return { oauthClient: toOAuthClient(row) };
    },

    async listOAuthClients(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const scope = `oauth_clients:${collection}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      await collectionKeys(deps, db, collection);
      const rows = await store.listOAuthClients(db, collection, page.after, page.size);
      return {
        oauthClients: rows.map(toOAuthClient),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.name),
        ),
      };
    },

    async updateOAuthClient(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      const secret = clientSecret(req.client?.clientSecret ?? '');
      const row = await db.transaction().execute(async (trx) => {
        const keys = await collectionKeys(deps, trx, collection);
        const current = await store.getOAuthClient(trx, collection, name);
        if (current === undefined) throw missing(collection, name);
        let sealed = current.client_secret_sealed;
        if (req.clearClientSecret) sealed = null;
        if (secret !== '') sealed = sealValue(keys, clientSecretContext(collection, name), secret);
        const config = checkClientInput(req.client, sealed !== null);
        const updated: OAuthClientTable = {
          ...current,
          config: JSON.stringify(config),
          client_secret_sealed: sealed,
          updated_at: deps.now(),
          updated_by: principal.tokenId,
        };
        await store.replaceOAuthClient(trx, updated);
        await audit(trx, deps, principal, {
          collection,
          action: 'oauth_client.update',
          target: name,
          details: { secret_changed: String(secret !== '' || req.clearClientSecret) },
        });
        return updated;
      });
      return { oauthClient: toOAuthClient(row) };
    },

    async deleteOAuthClient(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = resourceName('name', req.name);
      await db.transaction().execute(async (trx) => {
        await collectionKeys(deps, trx, collection);
        const used = await store.countAccountsOfClient(trx, collection, name);
        if (used > 0) {
          throw precondition(
            `OAuth client "${name}" still has ${used} connected account(s); delete them first`,
          );
        }
        if (!(await store.deleteOAuthClient(trx, collection, name))) {
          throw missing(collection, name);
        }
        await audit(trx, deps, principal, {
          collection,
          action: 'oauth_client.delete',
          target: name,
        });
      });
      return {};
    },
  };
}
