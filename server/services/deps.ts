import type { Principal } from '../auth/principal.js';
import type { CollectionKeys, Keyring } from '../crypto/keyring.js';
import { notFound } from '../errors.js';
import { newEventId } from '../ids.js';
import { insertAuditEvent } from '../store/audit.js';
import { bumpVersion, getCollection } from '../store/collections.js';
import type { Db } from '../store/db.js';
import type { CollectionRow } from '../store/schema.js';
import { quote } from '../validate/common.js';

export interface ServiceDeps {
  db: Db;
  keyring: Keyring;
  now: () => number;
  /**
   * Told that a collection's version moved, so attached streams hear of it at once rather than
   * at the watcher's next poll. Called inside the transaction: the watcher's read of versions
   * waits for the store (SQLite has one connection) or sees the change at commit (PostgreSQL
   * notifies then).
   */
  changed?: () => void;
}

export async function loadCollection(db: Db, name: string): Promise<CollectionRow> {
  const row = await getCollection(db, name);
  if (row === undefined) throw notFound(`collection ${quote(name)} not found`);
  return row;
}

export async function collectionKeys(
  deps: ServiceDeps,
  db: Db,
  name: string,
): Promise<CollectionKeys> {
  const row = await loadCollection(db, name);
  return deps.keyring.openDataKey(row.name, row.data_key_sealed);
}

export interface AuditInput {
  collection: string;
  action: string;
  target: string;
  fingerprint?: string;
  details?: Record<string, string>;
  /**
   * The change alters what the collection's runs receive outside the layers (its outage limit):
   * bump the version as a layer change does.
   */
  delivered?: boolean;
}

/** Actions that change what a run of the collection receives. */
const LAYER_ACTIONS = /^(env_var|provider_key|oauth_client|account)\./;

/**
 * Records an admin change; call it inside the transaction that makes the change. A change to a
 * layer (or one marked `delivered`) also bumps the collection's version, which attached agents
 * follow.
 */
export async function audit(db: Db, deps: ServiceDeps, actor: Principal, e: AuditInput) {
  if (e.delivered === true || LAYER_ACTIONS.test(e.action)) {
    await bumpVersion(db, e.collection);
    deps.changed?.();
  }
  await insertAuditEvent(db, {
    id: newEventId(),
    time: deps.now(),
    actor: actor.tokenId,
    collection: e.collection,
    action: e.action,
    target: e.target,
    fingerprint: e.fingerprint ?? '',
    details: JSON.stringify(e.details ?? {}),
  });
}

export const toDate = (ms: number): Date => new Date(Number(ms));
export const optionalDate = (ms: number | null): Date | undefined =>
  ms === null ? undefined : toDate(ms);
