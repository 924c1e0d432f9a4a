import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/fs.js';
import { OperatorError } from '../../common/operator-error.js';
import { KEY_BYTES } from './seal.js';

export type MasterKeySource = 'env' | 'file';

export interface MasterKey {
  key: Uint8Array;
  source: MasterKeySource;
  /** Set when the key came from (or was created in) the data dir. */
  path?: string;
  created: boolean;
}

export class MasterKeyError extends OperatorError {}

export const masterKeyPath = (dataDir: string): string => join(dataDir, 'master.key');
/** The key a rotation is moving to, kept until the store is re-sealed under it. */
export const pendingMasterKeyPath = (dataDir: string): string => join(dataDir, 'master.key.new');

export function decodeMasterKey(text: string, origin: string): Uint8Array {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== trimmed) {
    throw new MasterKeyError(
      `${origin} must be the base64 of exactly ${KEY_BYTES} bytes ` +
        '(make one with: head -c 32 /dev/urandom | base64)',
    );
  }
  return key;
}

/**
 * The master key comes from RUNKEYS_MASTER_KEY when it is set. Otherwise it lives in
 * `master.key` in the data dir, created on first use with mode 0600: a development default,
 * since whoever copies the data dir then holds the key beside the values.
 */
export function loadMasterKey(dataDir: string, envValue: string | undefined): MasterKey {
  if (envValue !== undefined && envValue !== '') {
    return { key: decodeMasterKey(envValue, 'RUNKEYS_MASTER_KEY'), source: 'env', created: false };
  }
  const path = masterKeyPath(dataDir);
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) chmodSync(path, 0o600);
    const key = decodeMasterKey(readFileSync(path, 'utf8'), path);
    return { key, source: 'file', path, created: false };
  }
  const key = randomBytes(KEY_BYTES);
  writeFileAtomic(path, `${key.toString('base64')}\n`, 0o600);
  return { key, source: 'file', path, created: true };
}

export function readPendingMasterKey(dataDir: string): Uint8Array | undefined {
  const path = pendingMasterKeyPath(dataDir);
  if (!existsSync(path)) return undefined;
  return decodeMasterKey(readFileSync(path, 'utf8'), path);
}

export function promotePendingMasterKey(dataDir: string): void {
  renameSync(pendingMasterKeyPath(dataDir), masterKeyPath(dataDir));
}
