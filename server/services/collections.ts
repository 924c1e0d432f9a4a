import type {
  Collection,
  CollectionServiceServer,
} from '../../proto/gen/runkeys/v1/collections.js';
import { authorize, requireRoot } from '../auth/principal.js';
import { conflict } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import * as store from '../store/collections.js';
import type { CollectionRow, NewCollectionRow } from '../store/schema.js';
import { maxLength, noNul, quote, resourceName } from '../validate/common.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, loadCollection, type ServiceDeps, toDate } from './deps.js';

const MAX_DESCRIPTION = 1024;

function toCollection(row: CollectionRow | NewCollectionRow): Collection {
  return {
    name: row.name,
    description: row.description,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
    createdBy: row.created_by,
  };
}

function description(value: string): string {
  return noNul('description', maxLength('description', value, MAX_DESCRIPTION));
}

export function collectionHandlers(deps: ServiceDeps): Handlers<CollectionServiceServer> {
  const { db } = deps;
  return {
    async createCollection(req, { principal, log }) {
      requireRoot(principal, 'create collections');
      const name = resourceName('name', req.name);
      const desc = description(req.description);
      const row = await db.transaction().execute(async (trx) => {
        if ((await store.getCollection(trx, name)) !== undefined) {
          throw conflict(`collection ${quote(name)} already exists`);
        }
        const now = deps.now();
        const created: NewCollectionRow = {
          name,
          description: desc,
          data_key_sealed: deps.keyring.newDataKey(name),
          created_at: now,
          updated_at: now,
          created_by: principal.tokenId,
        };
        await store.insertCollection(trx, created);
        await audit(trx, deps, principal, {
          collection: name,
          action: 'collection.create',
          target: name,
        });
        return created;
      });
      log.info({ collection: name }, 'collection created');
      return { collection: toCollection(row) };
    },

    async getCollection(req, { principal }) {
      const name = resourceName('name', req.name);
      authorize(principal, name, 'read');
      return { collection: toCollection(await loadCollection(db, name)) };
    },

    async listCollections(req, { principal }) {
      const page = readPage(req.pageSize, req.pageToken, 'collections');
      const only = principal.role === 'root' ? undefined : (principal.collection ?? undefined);
      const rows = await store.listCollections(db, page.after, page.size, only);
      return {
        collections: rows.map(toCollection),
        nextPageToken: nextPageToken(
          'collections',
          page,
          rows.map((r) => r.name),
        ),
      };
    },

    async updateCollection(req, { principal }) {
      const name = resourceName('name', req.name);
      authorize(principal, name, 'write');
      const desc = description(req.description);
      const row = await db.transaction().execute(async (trx) => {
        const current = await loadCollection(trx, name);
        const updated = { ...current, description: desc, updated_at: deps.now() };
        await store.updateCollection(trx, name, {
          description: updated.description,
          updated_at: updated.updated_at,
        });
        await audit(trx, deps, principal, {
          collection: name,
          action: 'collection.update',
          target: name,
        });
        return updated;
      });
      return { collection: toCollection(row) };
    },

    async deleteCollection(req, { principal, log }) {
      requireRoot(principal, 'delete collections');
      const name = resourceName('name', req.name);
      await db.transaction().execute(async (trx) => {
        await loadCollection(trx, name);
        await store.deleteCollection(trx, name);
        await audit(trx, deps, principal, {
          collection: name,
          action: 'collection.delete',
          target: name,
        });
      });
      deps.keyring.forget(name);
      log.info({ collection: name }, 'collection deleted');
      return {};
    },
  };
}
