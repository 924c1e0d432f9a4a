import type {
  ProviderCredential,
  ProviderKey,
  ProviderKeyServiceServer,
} from '../../proto/gen/runkeys/v1/provider_keys.js';
import { authorize } from '../auth/principal.js';
import { type CollectionKeys, fingerprintValue, sealValue } from '../crypto/keyring.js';
import { conflict, notFound } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import {
  CREDENTIAL_FIELDS,
  type Credential,
  checkCredential,
  lastFour,
  type ProviderName,
  providerName,
  secretField,
} from '../layers/providers.js';
import type { Db } from '../store/db.js';
import * as store from '../store/provider-keys.js';
import type { ProviderKeyTable } from '../store/schema.js';
import { resourceName } from '../validate/common.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, collectionKeys, type ServiceDeps, toDate } from './deps.js';

export const providerKeyContext = (collection: string, provider: string): string =>
  `provider-key:${collection}:${provider}`;

function toProviderKey(row: ProviderKeyTable): ProviderKey {
  return {
    collection: row.collection,
    provider: row.provider,
    fieldsSet: JSON.parse(row.fields_set) as string[],
    lastFour: row.last_four,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
    createdBy: row.created_by,
    updatedBy: row.updated_by,
  };
}

function fromWire(c: ProviderCredential | undefined): Credential {
  const input: Credential = {};
  if (c === undefined) return input;
  input.api_key = c.apiKey;
  input.base_url = c.baseUrl;
  input.region = c.region;
  input.access_key_id = c.accessKeyId;
  input.secret_access_key = c.secretAccessKey;
  input.session_token = c.sessionToken;
  input.bearer_token = c.bearerToken;
  return input;
}

function sealedRow(
  keys: CollectionKeys,
  collection: string,
  provider: ProviderName,
  credential: Credential,
  actor: string,
  now: number,
): ProviderKeyTable {
  return {
    collection,
    provider,
    credential_sealed: sealValue(
      keys,
      providerKeyContext(collection, provider),
      JSON.stringify(credential),
    ),
    fields_set: JSON.stringify(CREDENTIAL_FIELDS.filter((f) => credential[f] !== undefined)),
    last_four: lastFour(credential),
    created_at: now,
    updated_at: now,
    created_by: actor,
    updated_by: actor,
  };
}

function auditFingerprint(keys: CollectionKeys, credential: Credential): string {
  const secret = secretField(credential);
  return secret === undefined ? '' : fingerprintValue(keys, secret);
}

export function providerKeyHandlers(deps: ServiceDeps): Handlers<ProviderKeyServiceServer> {
  const { db } = deps;

  async function write(
    trx: Db,
    principalId: string,
    collection: string,
    provider: ProviderName,
    credential: Credential,
    mode: 'create' | 'update' | 'upsert',
  ): Promise<{ row: ProviderKeyTable; created: boolean; keys: CollectionKeys }> {
    const keys = await collectionKeys(deps, trx, collection);
    const existing = await store.getProviderKey(trx, collection, provider);
    if (existing !== undefined && mode === 'create') {
      throw conflict(
        `collection "${collection}" already has a key for ${provider}; replace it with ` +
          `UpdateProviderKey (runkeys providers set ${provider} --collection ${collection})`,
      );
    }
    if (existing === undefined && mode === 'update') {
      throw notFound(`collection "${collection}" has no ${provider} key`);
    }
    const row = sealedRow(keys, collection, provider, credential, principalId, deps.now());
    if (existing === undefined) {
      await store.insertProviderKey(trx, row);
      return { row, created: true, keys };
    }
    const replaced = { ...row, created_at: existing.created_at, created_by: existing.created_by };
    await store.replaceProviderKey(trx, replaced);
    return { row: replaced, created: false, keys };
  }

  return {
    async createProviderKey(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const provider = providerName(req.provider);
      const credential = checkCredential(provider, fromWire(req.credential));
      const row = await db.transaction().execute(async (trx) => {
        const out = await write(trx, principal.tokenId, collection, provider, credential, 'create');
        await audit(trx, deps, principal, {
          collection,
          action: 'provider_key.create',
          target: provider,
          fingerprint: auditFingerprint(out.keys, credential),
          details: { fields: JSON.parse(out.row.fields_set).join(',') },
        });
        return out.row;
      });
      return { providerKey: toProviderKey(row) };
    },

    async getProviderKey(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const provider = providerName(req.provider);
      await collectionKeys(deps, db, collection);
      const row = await store.getProviderKey(db, collection, provider);
      if (row === undefined) throw notFound(`collection "${collection}" has no ${provider} key`);
      return { providerKey: toProviderKey(row) };
    },

    async listProviderKeys(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const scope = `provider_keys:${collection}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      await collectionKeys(deps, db, collection);
      const rows = await store.listProviderKeys(db, collection, page.after, page.size);
      return {
        providerKeys: rows.map(toProviderKey),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.provider),
        ),
      };
    },

    async updateProviderKey(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const provider = providerName(req.provider);
      const credential = checkCredential(provider, fromWire(req.credential));
      const mode = req.allowMissing ? 'upsert' : 'update';
      const out = await db.transaction().execute(async (trx) => {
        const res = await write(trx, principal.tokenId, collection, provider, credential, mode);
        await audit(trx, deps, principal, {
          collection,
          action: res.created ? 'provider_key.create' : 'provider_key.update',
          target: provider,
          fingerprint: auditFingerprint(res.keys, credential),
          details: { fields: JSON.parse(res.row.fields_set).join(',') },
        });
        return res;
      });
      return { providerKey: toProviderKey(out.row), created: out.created };
    },

    async deleteProviderKey(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const provider = providerName(req.provider);
      await db.transaction().execute(async (trx) => {
        await collectionKeys(deps, trx, collection);
        if (!(await store.deleteProviderKey(trx, collection, provider))) {
          throw notFound(`collection "${collection}" has no ${provider} key`);
        }
        await audit(trx, deps, principal, {
          collection,
          action: 'provider_key.delete',
          target: provider,
        });
      });
      return {};
    },
  };
}
