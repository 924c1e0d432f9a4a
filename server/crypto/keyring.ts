import { randomBytes } from 'node:crypto';
import { OperatorError } from '../../common/operator-error.js';
import {
  deriveKey,
  fingerprint,
  KEY_BYTES,
  open,
  openString,
  SealError,
  seal,
  sealString,
} from './seal.js';

const CHECK_CONTEXT = 'meta:master-check';
const CHECK_TEXT = 'runkeys master key check v1';
const dataKeyContext = (collection: string): string => `collection:${collection}:data-key`;
const runKeyContext = (id: string): string => `run-key:${id}`;

/** The keys of one collection, opened from its sealed data key. */
export interface CollectionKeys {
  /** Seals values of this collection (secretbox). */
  sealKey: Buffer;
  /** Keys the fingerprints shown to admins and written to the audit log. */
  fingerprintKey: Buffer;
}

export class MasterKeyMismatch extends OperatorError {
  constructor() {
    super(
      'the master key does not open this store (was RUNKEYS_MASTER_KEY or master.key changed?)',
    );
  }
}

/**
 * Two levels of keys: the master key (outside the database) seals one random data key per
 * collection, and each data key seals that collection's values. Rotating the master key
 * re-seals the data keys only.
 */
export class Keyring {
  private readonly cache = new Map<string, CollectionKeys>();

  constructor(private readonly masterKey: Uint8Array) {}

  /** A value stored beside the data so that a wrong master key is caught at start. */
  makeCheck(): string {
    return sealString(this.masterKey, CHECK_CONTEXT, CHECK_TEXT);
  }

  verifyCheck(sealed: string): void {
    try {
      if (openString(this.masterKey, CHECK_CONTEXT, sealed) === CHECK_TEXT) return;
    } catch (err) {
      if (!(err instanceof SealError)) throw err;
    }
    throw new MasterKeyMismatch();
  }

  opensCheck(sealed: string): boolean {
    try {
      this.verifyCheck(sealed);
      return true;
    } catch {
      // A mismatch is the answer here, not a failure.
      return false;
    }
  }

  /** Makes a new data key for a collection and returns it sealed under the master key. */
  newDataKey(collection: string): string {
    const dataKey = randomBytes(KEY_BYTES);
    const sealed = seal(this.masterKey, dataKeyContext(collection), dataKey);
    this.cache.set(collection, keysFrom(dataKey));
    dataKey.fill(0);
    return sealed;
  }

  /** Opens a sealed data key; throws SealError when the master key does not open it. */
  openDataKey(collection: string, sealedDataKey: string): CollectionKeys {
    const cached = this.cache.get(collection);
    if (cached !== undefined) return cached;
    const dataKey = open(this.masterKey, dataKeyContext(collection), sealedDataKey);
    const keys = keysFrom(dataKey);
    dataKey.fill(0);
    this.cache.set(collection, keys);
    return keys;
  }

  /** Re-seals a data key sealed under this master key for another master key. */
  resealDataKey(collection: string, sealedDataKey: string, next: Keyring): string {
    const dataKey = open(this.masterKey, dataKeyContext(collection), sealedDataKey);
    const resealed = seal(next.masterKey, dataKeyContext(collection), dataKey);
    dataKey.fill(0);
    return resealed;
  }

  /** The control plane's run keys are sealed directly under the master key. */
  sealRunKey(id: string, secretKey: Uint8Array): string {
    return seal(this.masterKey, runKeyContext(id), secretKey);
  }

  openRunKey(id: string, sealed: string): Buffer {
    return open(this.masterKey, runKeyContext(id), sealed);
  }

  resealRunKey(id: string, sealed: string, next: Keyring): string {
    const secret = this.openRunKey(id, sealed);
    const resealed = next.sealRunKey(id, secret);
    secret.fill(0);
    return resealed;
  }

  forget(collection: string): void {
    this.cache.delete(collection);
  }
}

function keysFrom(dataKey: Uint8Array): CollectionKeys {
  return { sealKey: deriveKey(dataKey, 'seal'), fingerprintKey: deriveKey(dataKey, 'fingerprint') };
}

export const sealValue = (keys: CollectionKeys, context: string, value: string): string =>
  sealString(keys.sealKey, context, value);

export const openValue = (keys: CollectionKeys, context: string, sealed: string): string =>
  openString(keys.sealKey, context, sealed);

export const fingerprintValue = (keys: CollectionKeys, value: string): string =>
  fingerprint(keys.fingerprintKey, value);
