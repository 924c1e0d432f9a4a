import { requireMasterKeyWithDatabase } from './config.js';
import { newEventId } from './ids.js';
import { openKeyring } from './keys-at-start.js';
import type { Logger } from './logger.js';
import { type RunKey, RunKeys } from './runs/run-keys.js';
import { insertAuditEvent } from './store/audit.js';
import { openStore, type StoreLocation } from './store/open.js';

/**
 * Makes a new control-plane run key. New runs get it; a run keeps the key it was created with
 * (its agent pinned that one), so rotating never breaks a run that is going on. Safe while
 * servers run: they read the current key at each CreateRun.
 */
export async function rotateRunKey(
  where: StoreLocation,
  masterKeyEnv: string | undefined,
  log: Logger,
): Promise<RunKey> {
  requireMasterKeyWithDatabase(where.databaseUrl, masterKeyEnv);
  const { db } = await openStore(where, log);
  const { dataDir } = where;
  try {
    const keyring = await openKeyring(db, dataDir, masterKeyEnv, log);
    const key = await new RunKeys(db, keyring).rotate();
    await insertAuditEvent(db, {
      id: newEventId(),
      time: Date.now(),
      actor: 'runkeys',
      collection: '',
      action: 'run_key.rotate',
      target: key.id,
      fingerprint: '',
      details: '{}',
    });
    log.info({ runKey: key.id }, 'run key rotated');
    return key;
  } finally {
    await db.destroy();
  }
}
