import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../store/db.js';
import * as store from '../store/runs.js';

export interface RunKey {
  id: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/**
 * The control plane's long-term X25519 key pairs. New runs use the newest; a run keeps the key
 * it was created with, so rotating (`runkeys server rotate-run-key`) never breaks a run that is
 * going on. Secret halves are sealed under the master key.
 */
export class RunKeys {
  private readonly cache = new Map<string, RunKey>();

  constructor(
    private readonly db: Db,
    private readonly keyring: Keyring,
  ) {}

  async current(): Promise<RunKey> {
    const row = await store.currentRunKey(this.db);
    if (row !== undefined) return this.opened(row);
    return this.rotate();
  }

  async byId(id: string): Promise<RunKey | undefined> {
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    const row = await store.getRunKey(this.db, id);
    return row === undefined ? undefined : this.opened(row);
  }

  /** Makes a new key for new runs; older keys stay for the runs that use them. */
  async rotate(): Promise<RunKey> {
    const pair = nacl.box.keyPair();
    const id = `rk_${randomBytes(6).toString('hex')}`;
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      await store.retireRunKeys(trx, now);
      await store.insertRunKey(trx, {
        id,
        public_key: Buffer.from(pair.publicKey).toString('base64'),
        secret_sealed: this.keyring.sealRunKey(id, pair.secretKey),
        created_at: now,
        retired_at: null,
      });
    });
    const key = { id, publicKey: pair.publicKey, secretKey: pair.secretKey };
    this.cache.set(id, key);
    return key;
  }

  private opened(row: { id: string; public_key: string; secret_sealed: string }): RunKey {
    const cached = this.cache.get(row.id);
    if (cached !== undefined) return cached;
    const key = {
      id: row.id,
      publicKey: Buffer.from(row.public_key, 'base64'),
      secretKey: this.keyring.openRunKey(row.id, row.secret_sealed),
    };
    this.cache.set(row.id, key);
    return key;
  }
}
