import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { sql } from 'kysely';
import { writeFileAtomic } from '../common/fs.js';
import { OperatorError } from '../common/operator-error.js';
import { requireMasterKeyWithDatabase } from './config.js';
import { Keyring } from './crypto/keyring.js';
import {
  decodeMasterKey,
  loadMasterKey,
  pendingMasterKeyPath,
  promotePendingMasterKey,
} from './crypto/master-key.js';
import { KEY_BYTES } from './crypto/seal.js';
import { newEventId } from './ids.js';
import { MASTER_CHECK, openKeyring } from './keys-at-start.js';
import type { Logger } from './logger.js';
import { runningServers } from './presence.js';
import { insertAuditEvent } from './store/audit.js';
import { listAllCollections, updateCollection } from './store/collections.js';
import type { Db } from './store/db.js';
import { putMeta } from './store/meta.js';
import { openStore, type StoreLocation } from './store/open.js';
import { isPostgres } from './store/postgres.js';
import { listRunKeys, updateRunKeySeal } from './store/runs.js';

export class RotationError extends OperatorError {}

export interface RotationResult {
  collections: number;
  /** Where the new key is: the key file, or the caller's RUNKEYS_NEW_MASTER_KEY. */
  newKeySource: 'file' | 'env';
}

/**
 * Re-seals every collection's data key under a new master key; values are not touched.
 * 1. open the store under the current key (which must open it);
 * 2. take the new key from RUNKEYS_NEW_MASTER_KEY, or make one when the key lives in a file;
 * 3. a key file's successor is written as master.key.new before the store changes;
 * 4. one transaction re-seals the data keys, the run keys and the check value;
 * 5. master.key.new replaces master.key (a start after a crash between 4 and 5 finishes it).
 * Refused while a server runs on the store (its heartbeat in server_presence is fresh): a
 * running server keeps the old key in memory and would seal what it writes next under it.
 */
export async function rotateMasterKey(
  where: StoreLocation,
  env: { current?: string; next?: string },
  log: Logger,
): Promise<RotationResult> {
  // 1.
  requireMasterKeyWithDatabase(where.databaseUrl, env.current);
  const { db } = await openStore(where, log);
  const { dataDir } = where;
  try {
    await refuseWhileServersRun(db);
    const current = await openKeyring(db, dataDir, env.current, log);
    const source = loadMasterKey(dataDir, env.current).source;
    // 2.
    let nextKey: Uint8Array;
    if (env.next !== undefined && env.next !== '') {
      nextKey = decodeMasterKey(env.next, 'RUNKEYS_NEW_MASTER_KEY');
    } else if (source === 'file') {
      nextKey = randomBytes(KEY_BYTES);
    } else {
      throw new RotationError(
        'the master key comes from RUNKEYS_MASTER_KEY: set RUNKEYS_NEW_MASTER_KEY to the new key ' +
          '(head -c 32 /dev/urandom | base64)',
      );
    }
    // A key that lives in master.key is replaced there, by the given key or a fresh one.
    const writesFile = source === 'file';
    // 3.
    if (writesFile) {
      writeFileAtomic(
        pendingMasterKeyPath(dataDir),
        `${Buffer.from(nextKey).toString('base64')}\n`,
        0o600,
      );
    }
    // 4.
    const next = new Keyring(nextKey);
    const count = await db.transaction().execute(async (trx) => {
      // Again inside the transaction, for a server that started since the first look. On
      // PostgreSQL the lock holds back a server starting now until this commits: it then reads
      // the new check value and refuses its old key. (On SQLite the one writer does the same.)
      if (isPostgres(trx)) {
        await sql`lock table server_presence in exclusive mode`.execute(trx);
      }
      await refuseWhileServersRun(trx, () => {
        if (writesFile) rmSync(pendingMasterKeyPath(dataDir), { force: true });
      });
      const rows = await listAllCollections(trx);
      for (const row of rows) {
        const resealed = current.resealDataKey(row.name, row.data_key_sealed, next);
        await updateCollection(trx, row.name, { data_key_sealed: resealed });
      }
      for (const key of await listRunKeys(trx)) {
        await updateRunKeySeal(trx, key.id, current.resealRunKey(key.id, key.secret_sealed, next));
      }
      await putMeta(trx, MASTER_CHECK, next.makeCheck());
      await insertAuditEvent(trx, {
        id: newEventId(),
        time: Date.now(),
        actor: 'runkeys',
        collection: '',
        action: 'master_key.rotate',
        target: '',
        fingerprint: '',
        details: JSON.stringify({ collections: String(rows.length) }),
      });
      return rows.length;
    });
    // 5.
    if (writesFile) promotePendingMasterKey(dataDir);
    log.info({ collections: count }, 'master key rotated');
    return { collections: count, newKeySource: writesFile ? 'file' : 'env' };
  } finally {
    await db.destroy();
  }
}

async function refuseWhileServersRun(db: Db, before?: () => void): Promise<void> {
  const running = await runningServers(db);
  if (running.length === 0) return;
  before?.();
  throw new RotationError(
    `a control plane is running on this store: ${running.join('; ')}. Stop every server first: ` +
      'a running server keeps the old master key and would seal what it writes next under it',
  );
}
