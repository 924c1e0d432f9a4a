import { createHmac, randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';

/**
 * Sealing at rest: nacl.secretbox (XSalsa20-Poly1305) with a fresh random nonce.
 *
 * A sealed blob is `v1.` + base64(nonce || box). The plaintext starts with a context string
 * (which row and field the value belongs to) and a NUL, so a blob copied into another row of the
 * database does not open there.
 */
const VERSION = 'v1.';
const NONCE_BYTES = nacl.secretbox.nonceLength;

export const KEY_BYTES = nacl.secretbox.keyLength;

/** Every failure to open reads the same, whatever the cause. */
export class SealError extends Error {
  constructor() {
    super('sealed value could not be opened');
    this.name = 'SealError';
  }
}

export function seal(key: Uint8Array, context: string, plaintext: Uint8Array): string {
  const ctx = Buffer.from(`${context}\0`, 'utf8');
  const message = Buffer.concat([ctx, plaintext]);
  const nonce = randomBytes(NONCE_BYTES);
  const box = nacl.secretbox(message, nonce, key);
  message.fill(0);
  return VERSION + Buffer.concat([nonce, box]).toString('base64');
}

export function open(key: Uint8Array, context: string, sealed: string): Buffer {
  if (!sealed.startsWith(VERSION)) throw new SealError();
  const raw = Buffer.from(sealed.slice(VERSION.length), 'base64');
  if (raw.length < NONCE_BYTES + nacl.secretbox.overheadLength) throw new SealError();
  const opened = nacl.secretbox.open(raw.subarray(NONCE_BYTES), raw.subarray(0, NONCE_BYTES), key);
  if (opened === null) throw new SealError();
  const ctx = Buffer.from(`${context}\0`, 'utf8');
  const body = Buffer.from(opened);
  if (body.length < ctx.length || !body.subarray(0, ctx.length).equals(ctx)) {
    body.fill(0);
    throw new SealError();
  }
  return body.subarray(ctx.length);
}

export const sealString = (key: Uint8Array, context: string, value: string): string =>
  seal(key, context, Buffer.from(value, 'utf8'));

export const openString = (key: Uint8Array, context: string, sealed: string): string =>
  open(key, context, sealed).toString('utf8');

/** A subkey for one purpose, so one data key never serves two algorithms. */
export function deriveKey(key: Uint8Array, purpose: string): Buffer {
  return createHmac('sha256', key).update(`runkeys/${purpose}`).digest();
}

/**
 * Keyed fingerprint of a value: lets admins and the audit log tell versions apart without the
 * value. 128 bits of HMAC-SHA256 under a per-collection key, so equal values in two collections
 * do not compare equal.
 */
export function fingerprint(fingerprintKey: Uint8Array, value: string): string {
  const mac = createHmac('sha256', fingerprintKey).update(value, 'utf8').digest();
  return `hmac:${mac.subarray(0, 16).toString('hex')}`;
}
