import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { newRawKeyPair } from './keys.js';

/**
 * Messages from the control plane to one agent: nacl.box (X25519, XSalsa20-Poly1305) from the
 * control plane's run key to the agent's ephemeral key, with a fresh random nonce each time.
 * Only that agent can open them, and it can tell they came from the key it pinned.
 */
export const PUBLIC_KEY_BYTES = nacl.box.publicKeyLength;
export const SECRET_KEY_BYTES = nacl.box.secretKeyLength;

export interface Sealed {
  nonce: Uint8Array;
  box: Uint8Array;
}

/** Every failure to open reads the same: a bad nonce, a wrong key and a forged MAC alike. */
export class BundleError extends Error {
  constructor() {
    super('bundle could not be opened');
    this.name = 'BundleError';
  }
}

/** DER prefix that wraps a raw X25519 private key for node:crypto. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SIGMA = Buffer.from('expand 32-byte k', 'ascii');

/** tweetnacl's HSalsa20 core, which its published types leave out. */
const hsalsa20 = (
  nacl as unknown as {
    lowlevel: {
      crypto_core_hsalsa20(
        out: Uint8Array,
        nonce: Uint8Array,
        key: Uint8Array,
        c: Uint8Array,
      ): void;
    };
  }
).lowlevel.crypto_core_hsalsa20;

/**
 * Imported private keys, by the buffer that holds them: the control plane's run key is used
 * for every stream of its runs, and importing it each time would cost more than the exchange.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  let key = privateKeys.get(secretKey);
  if (key === undefined) {
    key = createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, secretKey]),
      format: 'der',
      type: 'pkcs8',
    });
    privateKeys.set(secretKey, key);
  }
  return key;
}

export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** A fresh X25519 key pair, as raw 32-byte halves (the same form nacl.box uses). */
export function newKeyPair(): KeyPair {
  const { secret, publicKey } = newRawKeyPair();
  return { publicKey, secretKey: secret };
}

/**
 * The shared key of one (control plane, agent) pair, computed once per stream rather than for
 * every message: exactly nacl.box.before (HSalsa20 over the X25519 shared secret), with the
 * scalar multiplication done by node:crypto, which is many times faster than tweetnacl's.
 */
export function sharedKey(publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_BYTES || secretKey.length !== SECRET_KEY_BYTES) {
    throw new BundleError();
  }
  let secret: Buffer;
  try {
    secret = diffieHellman({
      privateKey: privateKeyObject(secretKey),
      // A JWK imports several times faster than the same key as DER.
      publicKey: createPublicKey({
        key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') },
        format: 'jwk',
      }),
    });
  } catch {
    // node:crypto refuses low-order points; to the caller that is one more key that fails.
    throw new BundleError();
  }
  const shared = boxKeyOf(secret);
  secret.fill(0);
  return shared;
}

/** nacl.box.before's last step: HSalsa20 over an X25519 shared secret gives the box key. */
export function boxKeyOf(x25519Secret: Uint8Array): Uint8Array {
  const shared = new Uint8Array(32);
  hsalsa20(shared, new Uint8Array(16), x25519Secret, SIGMA);
  return shared;
}

export function sealWith(plaintext: Uint8Array, shared: Uint8Array): Sealed {
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  return { nonce, box: nacl.box.after(plaintext, nonce, shared) };
}

export function openWith(sealed: Sealed, shared: Uint8Array): Uint8Array {
  if (sealed.nonce.length !== nacl.box.nonceLength || sealed.box.length < nacl.box.overheadLength) {
    throw new BundleError();
  }
  const opened = nacl.box.open.after(sealed.box, sealed.nonce, shared);
  if (opened === null) throw new BundleError();
  return opened;
}

export function sealFor(
  plaintext: Uint8Array,
  agentPublicKey: Uint8Array,
  serverSecretKey: Uint8Array,
): Sealed {
  return sealWith(plaintext, sharedKey(agentPublicKey, serverSecretKey));
}

export function openFrom(
  sealed: Sealed,
  serverPublicKey: Uint8Array,
  agentSecretKey: Uint8Array,
): Uint8Array {
  return openWith(sealed, sharedKey(serverPublicKey, agentSecretKey));
}
