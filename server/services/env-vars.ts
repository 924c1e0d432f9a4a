import type { EnvVar, EnvVarServiceServer } from '../../proto/gen/runkeys/v1/env_vars.js';
import { authorize, type Principal } from '../auth/principal.js';
import { fingerprintValue, openValue, sealValue } from '../crypto/keyring.js';
import { conflict, exhausted, notFound } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import type { Db } from '../store/db.js';
import * as store from '../store/env-vars.js';
import type { EnvVarTable } from '../store/schema.js';
import { resourceName } from '../validate/common.js';
import { envName, envValue, MAX_ENV_VARS } from '../validate/env-vars.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, collectionKeys, type ServiceDeps, toDate } from './deps.js';

export const envVarContext = (collection: string, name: string): string =>
  `env:${collection}:${name}`;

interface EnvWrite {
  collection: string;
  name: string;
  value: string;
  sensitive: boolean;
  mode: 'create' | 'update' | 'upsert';
}

export function envVarHandlers(deps: ServiceDeps): Handlers<EnvVarServiceServer> {
  const { db } = deps;

  /** Plain values are read back to callers who may read; sensitive ones never are. */
  async function toEnvVar(row: EnvVarTable, p: Principal): Promise<EnvVar> {
    let value = '';
    if (row.sensitive === 0 && p.role !== 'viewer') {
      const keys = await collectionKeys(deps, db, row.collection);
      value = openValue(keys, envVarContext(row.collection, row.name), row.value_sealed);
    }
    return {
      collection: row.collection,
      name: row.name,
      sensitive: row.sensitive === 1,
      value,
      valueBytes: row.value_bytes,
      fingerprint: row.fingerprint,
      createTime: toDate(row.created_at),
      updateTime: toDate(row.updated_at),
      createdBy: row.created_by,
      updatedBy: row.updated_by,
    };
  }

  async function write(trx: Db, p: Principal, w: EnvWrite) {
    const keys = await collectionKeys(deps, trx, w.collection);
    const existing = await store.getEnvVar(trx, w.collection, w.name);
    if (existing !== undefined && w.mode === 'create') {
      throw conflict(`variable "${w.name}" already exists in collection "${w.collection}"`);
    }
    if (existing === undefined && w.mode === 'update') {
      throw notFound(`variable "${w.name}" not found in collection "${w.collection}"`);
    }
    if (existing === undefined && (await store.countEnvVars(trx, w.collection)) >= MAX_ENV_VARS) {
      throw exhausted(
        `collection "${w.collection}" already has ${MAX_ENV_VARS} variables, the most allowed`,
      );
    }
    const now = deps.now();
    const row: EnvVarTable = {
      collection: w.collection,
      name: w.name,
      sensitive: w.sensitive ? 1 : 0,
      value_sealed: sealValue(keys, envVarContext(w.collection, w.name), w.value),
      value_bytes: Buffer.byteLength(w.value, 'utf8'),
      fingerprint: fingerprintValue(keys, w.value),
      created_at: existing?.created_at ?? now,
      updated_at: now,
      created_by: existing?.created_by ?? p.tokenId,
      updated_by: p.tokenId,
    };
    if (existing === undefined) await store.insertEnvVar(trx, row);
    else await store.replaceEnvVar(trx, row);
    await audit(trx, deps, p, {
      collection: w.collection,
      action: existing === undefined ? 'env_var.create' : 'env_var.update',
      target: w.name,
      fingerprint: row.fingerprint,
      details: { sensitive: String(w.sensitive) },
    });
    return { row, created: existing === undefined };
  }

  return {
    async createEnvVar(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = envName('name', req.name, req.allowOverride);
      const sensitive = req.sensitive ?? true;
      const value = envValue(req.value, sensitive);
      const { row } = await db
        .transaction()
        .execute((trx) =>
          write(trx, principal, { collection, name, value, sensitive, mode: 'create' }),
        );
      return { envVar: await toEnvVar(row, principal) };
    },

    async getEnvVar(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const name = envName('name', req.name, true);
      await collectionKeys(deps, db, collection);
      const row = await store.getEnvVar(db, collection, name);
      if (row === undefined) {
        throw notFound(`variable "${name}" not found in collection "${collection}"`);
      }
      return { envVar: await toEnvVar(row, principal) };
    },

    async listEnvVars(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'read');
      const scope = `env_vars:${collection}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      await collectionKeys(deps, db, collection);
      const rows = await store.listEnvVars(db, collection, page.after, page.size);
      const envVars = await Promise.all(rows.map((r) => toEnvVar(r, principal)));
      return {
        envVars,
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.name),
        ),
      };
    },

    async updateEnvVar(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = envName('name', req.name, req.allowOverride);
      const sensitive = req.sensitive ?? true;
      const value = envValue(req.value, sensitive);
      const mode = req.allowMissing ? 'upsert' : 'update';
      const out = await db
        .transaction()
        .execute((trx) => write(trx, principal, { collection, name, value, sensitive, mode }));
      return { envVar: await toEnvVar(out.row, principal), created: out.created };
    },

    async deleteEnvVar(req, { principal }) {
      const collection = resourceName('collection', req.collection);
      authorize(principal, collection, 'write');
      const name = envName('name', req.name, true);
      await db.transaction().execute(async (trx) => {
        await collectionKeys(deps, trx, collection);
        if (!(await store.deleteEnvVar(trx, collection, name))) {
          throw notFound(`variable "${name}" not found in collection "${collection}"`);
        }
        await audit(trx, deps, principal, { collection, action: 'env_var.delete', target: name });
      });
      return {};
    },
  };
}
