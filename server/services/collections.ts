import type {
  Collection,
  CollectionServiceServer,
} from '../../proto/gen/runkeys/v1/collections.js';
import { authorize, requireRoot } from '../auth/principal.js';
import { conflict, invalid } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import * as store from '../store/collections.js';
import type { CollectionRow, NewCollectionRow } from '../store/schema.js';
import { maxLength, noNul, quote, resourceName } from '../validate/common.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, loadCollection, type ServiceDeps, toDate } from './deps.js';

const MAX_DESCRIPTION = 1024;
/**
 * A collection's outage limit, in seconds, when it sets one. Under a minute, an agent would
 * remove its files at nearly every dropped stream: it notices a silent one only after 45 s.
 */
const MIN_MAX_OFFLINE_S = 60;
const MAX_MAX_OFFLINE_S = 7 * 24 * 3600;

function toCollection(row: CollectionRow | NewCollectionRow): Collection {
  return {
    name: row.name,
    description: row.description,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
    createdBy: row.created_by,
    maxOfflineSeconds: Number(row.max_offline_s ?? 0),
  };
}

function description(value: string): string {
  return noNul('description', maxLength('description', value, MAX_DESCRIPTION));
}

function maxOffline(seconds: number): number {
  if (seconds === 0) return 0;

  if (seconds < MIN_MAX_OFFLINE_S || seconds > MAX_MAX_OFFLINE_S) {
    throw invalid(
      `"max_offline_seconds" must be 0 (the agent's own --max-offline) or between ` +
        `${MIN_MAX_OFFLINE_S} and ${MAX_MAX_OFFLINE_S} (a week); got ${seconds}`,
    );
  }
  return seconds;
}

export function collectionHandlers(deps: ServiceDeps): Handlers<CollectionServiceServer> {
  const { db } = deps;
  return {
    async createCollection(req, { principal, log }) {
      requireRoot(principal, 'create collections');
      const name = resourceName('name', req.name);
      const desc = description(req.description);
      const limit = maxOffline(req.maxOfflineSeconds);
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
          max_offline_s: limit,
        };
        await store.insertCollection(trx, created);
        await audit(trx, deps, principal, {
          collection: name,
          action: 'collection.create',
          target: name,
          details: { max_offline_seconds: String(limit) },
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

    async updateCollection(req, { principal, log }) {
      const name = resourceName('name', req.name);
      authorize(principal, name, 'write');
      // Unset fields stay as they are; an update that sets none would change nothing.
      const desc = req.description === undefined ? undefined : description(req.description);
      const limit =
        req.maxOfflineSeconds === undefined ? undefined : maxOffline(req.maxOfflineSeconds);
      if (desc === undefined && limit === undefined) {
        throw invalid('set "description" or "max_offline_seconds"; the update changes nothing');
      }

      const { row, limitChanged } = await db.transaction().execute(async (trx) => {
        const current = await loadCollection(trx, name);
        const patch = {
          description: desc ?? current.description,
          max_offline_s: limit ?? Number(current.max_offline_s),
          updated_at: deps.now(),
        };
        await store.updateCollection(trx, name, patch);
        // A new limit reaches attached agents in a new bundle, as a layer change does.
        const changed = patch.max_offline_s !== Number(current.max_offline_s);
        await audit(trx, deps, principal, {
          collection: name,
          action: 'collection.update',
          target: name,
          details: updatedFields(desc, limit),
          delivered: changed,
        });
        return { row: { ...current, ...patch }, limitChanged: changed };
      });
      if (limitChanged) {
        log.info(
          { collection: name, maxOfflineSeconds: row.max_offline_s },
          'collection outage limit changed',
        );
      }
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

/** An update's audit details: the fields it set, and the new limit (never the description). */
function updatedFields(
  desc: string | undefined,
  limit: number | undefined,
): Record<string, string> {
  if (limit === undefined) return { fields: 'description' };

  const fields = desc === undefined ? 'max_offline_seconds' : 'description,max_offline_seconds';
  return { fields, max_offline_seconds: String(limit) };
}
