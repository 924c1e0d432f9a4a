import { Keyring, MasterKeyMismatch } from './crypto/keyring.js';
import {
  loadMasterKey,
  type MasterKey,
  promotePendingMasterKey,
  readPendingMasterKey,
} from './crypto/master-key.js';
import type { Logger } from './logger.js';
import type { Db } from './store/db.js';
import { getMeta, insertMetaIfAbsent } from './store/meta.js';

export const MASTER_CHECK = 'master_check';

/**
 * Opens the keyring for a store:
 * 1. load the master key (env, or the key file, created on first start);
 * 2. a new store gets a check value sealed under it (the first one stored, when replicas race);
 * 3. an existing store must open its check value; when it does not and a rotation left
 *    `master.key.new` behind that does, the rotation committed and only the file rename was
 *    lost, so finish it.
 */
export async function openKeyring(
  db: Db,
  dataDir: string,
  masterKeyEnv: string | undefined,
  log: Logger,
): Promise<Keyring> {
  // 1.
  let master: MasterKey = loadMasterKey(dataDir, masterKeyEnv);
  if (master.created) {
    log.warn(
      { path: master.path },
      'created a master key file beside the data: a development default; ' +
        'set RUNKEYS_MASTER_KEY in production',
    );
  }
  let keyring = new Keyring(master.key);
  let check = await getMeta(db, MASTER_CHECK);
  // 2. Replicas starting together on an empty store: the first check value stored stays, and
  // each replica then tests its own key against it below, so one started with another master
  // key is refused rather than sealing what the others cannot open.
  if (check === undefined) {
    await insertMetaIfAbsent(db, MASTER_CHECK, keyring.makeCheck());
    check = await getMeta(db, MASTER_CHECK);
    if (check === undefined) throw new Error('the master key check value was not stored');
  }
  // 3.
  if (keyring.opensCheck(check)) return keyring;
  const pending = master.source === 'file' ? readPendingMasterKey(dataDir) : undefined;
  if (pending !== undefined && new Keyring(pending).opensCheck(check)) {
    promotePendingMasterKey(dataDir);
    log.warn('finished an interrupted master key rotation');
    master = loadMasterKey(dataDir, undefined);
    keyring = new Keyring(master.key);
    return keyring;
  }
  throw new MasterKeyMismatch();
}
