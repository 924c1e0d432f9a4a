import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';

export interface RawKeyPair {
  /** The 32-byte X25519 private key (RFC 7748). */
  secret: Buffer;
  publicKey: Buffer;
}

/**
 * A fresh X25519 key pair as raw bytes: 32 random bytes as the private key, the public key
 * derived by node:crypto. Not generateKeyPairSync: on Node 20, exporting a just-generated
 * KeyObject as a JWK deadlocks when a GC inside the export collects the generator's job (both
 * lock the key's mutex), and asking the generator for DER instead costs three times as much. An
 * imported key has no such job. The JWK import reads the private key from `d` alone; `x` must be
 * present for the parser, and the derived public key is what is returned
 * (test/agent/keys.test.ts checks it against tweetnacl).
 */
export function newRawKeyPair(): RawKeyPair {
  const secret = randomBytes(32);
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: secret.toString('base64url'), x: '' },
    format: 'jwk',
  });
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '';
  return { secret, publicKey: Buffer.from(x, 'base64url') };
}
