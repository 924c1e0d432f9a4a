import {
  type AdminToken,
  type AdminTokenServiceServer,
  Role,
} from '../../proto/gen/runkeys/v1/admin.js';
import { authorize, type Principal, type RoleName } from '../auth/principal.js';
import { issueToken } from '../auth/tokens.js';
import { denied, invalid, notFound, precondition } from '../errors.js';
import type { Handlers } from '../grpc/adapter.js';
import * as store from '../store/admin-tokens.js';
import type { Db } from '../store/db.js';
import type { AdminTokenTable } from '../store/schema.js';
import { maxLength, noNul, quote, resourceName } from '../validate/common.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import { audit, loadCollection, optionalDate, type ServiceDeps, toDate } from './deps.js';

const ROLE_TO_WIRE: Record<RoleName, Role> = {
  root: Role.ROLE_ROOT,
  admin: Role.ROLE_ADMIN,
  runner: Role.ROLE_RUNNER,
  viewer: Role.ROLE_VIEWER,
};
const WIRE_TO_ROLE = new Map<Role, RoleName>(
  Object.entries(ROLE_TO_WIRE).map(([k, v]) => [v, k as RoleName]),
);
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;

export function toAdminToken(row: AdminTokenTable): AdminToken {
  return {
    id: row.id,
    collection: row.collection ?? '',
    role: ROLE_TO_WIRE[row.role as RoleName] ?? Role.ROLE_UNSPECIFIED,
    description: row.description,
    createTime: toDate(row.created_at),
    createdBy: row.created_by,
    expireTime: optionalDate(row.expires_at),
    lastUsedTime: optionalDate(row.last_used_at),
  };
}

/** A token row and its secret, for the first start and for CreateAdminToken. */
export function newTokenRow(
  role: RoleName,
  collection: string | null,
  description: string,
  createdBy: string,
  now: number,
  ttlSeconds: number,
): { row: AdminTokenTable; secret: string } {
  const issued = issueToken();
  return {
    secret: issued.secret,
    row: {
      id: issued.id,
      collection,
      role,
      description,
      secret_hash: issued.hash,
      created_at: now,
      created_by: createdBy,
      expires_at: ttlSeconds === 0 ? null : now + ttlSeconds * 1000,
      last_used_at: null,
    },
  };
}

function roleOf(wire: Role): RoleName {
  const role = WIRE_TO_ROLE.get(wire);
  if (role === undefined) {
    throw invalid(
      '"role" must be one of ROLE_ROOT, ROLE_ADMIN, ROLE_RUNNER, ROLE_VIEWER; ' +
        `got ${Role[wire] ?? wire}`,
    );
  }
  return role;
}

/** Root manages every token; an admin those of its collection; anyone else only its own. */
function mayManage(p: Principal, row: AdminTokenTable): boolean {
  if (p.role === 'root') return true;
  if (p.role === 'admin') return row.collection === p.collection;
  return row.id === p.tokenId;
}

async function loadToken(db: Db, p: Principal, id: string): Promise<AdminTokenTable> {
  // Token ids are tok_ and hex: anything else (a NUL, which PostgreSQL refuses) names none.
  const row = /^tok_[0-9a-f]{1,64}$/.test(id) ? await store.getAdminToken(db, id) : undefined;
  if (row === undefined || !mayManage(p, row)) throw notFound(`admin token ${quote(id)} not found`);
  return row;
}

export function adminTokenHandlers(deps: ServiceDeps): Handlers<AdminTokenServiceServer> {
  const { db } = deps;
  return {
    async createAdminToken(req, { principal, log }) {
      const role = roleOf(req.role);
      let collection: string | null = null;
      if (role === 'root') {
        if (principal.role !== 'root') throw denied('only a root token can create root tokens');
        if (req.collection !== '') throw invalid('"collection" must be empty for a root token');
      } else {
        collection = resourceName('collection', req.collection);
        authorize(principal, collection, 'write');
      }
      const description = noNul('description', maxLength('description', req.description, 256));
      if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 0) {
        throw invalid(
          '"ttl_seconds" must be 0 (no expiry) or a positive number of seconds; ' +
            `got ${req.ttlSeconds}`,
        );
      }
      if (req.ttlSeconds > MAX_TTL_SECONDS) {
        throw invalid(`"ttl_seconds" must be at most ${MAX_TTL_SECONDS}; got ${req.ttlSeconds}`);
      }
      const made = newTokenRow(
        role,
        collection,
        description,
        principal.tokenId,
        deps.now(),
        req.ttlSeconds,
      );
      await db.transaction().execute(async (trx) => {
        if (collection !== null) await loadCollection(trx, collection);
        await store.insertAdminToken(trx, made.row);
        await audit(trx, deps, principal, {
          collection: collection ?? '',
          action: 'admin_token.create',
          target: made.row.id,
          details: { role },
        });
      });
      log.info({ tokenId: made.row.id, role, collection }, 'admin token created');
      return { adminToken: toAdminToken(made.row), secret: made.secret };
    },

    async getAdminToken(req, { principal }) {
      return { adminToken: toAdminToken(await loadToken(db, principal, req.id)) };
    },

    async listAdminTokens(req, { principal }) {
      let collection: string | undefined;
      if (principal.role === 'root') {
        collection = req.collection === '' ? undefined : resourceName('collection', req.collection);
      } else {
        collection = req.collection === '' ? (principal.collection ?? '') : req.collection;
        authorize(principal, collection, 'write');
      }
      const scope = `admin_tokens:${collection ?? '*'}`;
      const page = readPage(req.pageSize, req.pageToken, scope);
      const rows = await store.listAdminTokens(db, collection, page.after, page.size);
      return {
        adminTokens: rows.map(toAdminToken),
        nextPageToken: nextPageToken(
          scope,
          page,
          rows.map((r) => r.id),
        ),
      };
    },

    async updateAdminToken(req, { principal }) {
      const description = noNul('description', maxLength('description', req.description, 256));
      const row = await db.transaction().execute(async (trx) => {
        const current = await loadToken(trx, principal, req.id);
        await store.updateAdminToken(trx, current.id, { description });
        await audit(trx, deps, principal, {
          collection: current.collection ?? '',
          action: 'admin_token.update',
          target: current.id,
        });
        return { ...current, description };
      });
      return { adminToken: toAdminToken(row) };
    },

    async deleteAdminToken(req, { principal, log }) {
      await db.transaction().execute(async (trx) => {
        const current = await loadToken(trx, principal, req.id);
        if (current.role === 'root' && (await store.countRootTokens(trx)) <= 1) {
          throw precondition('cannot delete the last root token; create another root token first');
        }
        await store.deleteAdminToken(trx, current.id);
        await audit(trx, deps, principal, {
          collection: current.collection ?? '',
          action: 'admin_token.delete',
          target: current.id,
        });
      });
      log.info({ tokenId: req.id }, 'admin token deleted');
      return {};
    },
  };
}
