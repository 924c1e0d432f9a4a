import sodium from 'sodium-native';
import { CREDENTIAL_BYTES, type ProofKind, statement } from '../../common/proof.js';
import {
  BundleError,
  boxKeyOf,
  PUBLIC_KEY_BYTES,
  SECRET_KEY_BYTES,
  type Sealed,
} from '../../common/sealing.js';

/**
 * The control plane's side of the attach protocol (docs/protocol.md) through libsodium
 * (sodium-native): making credentials, verifying proofs, and sealing to an agent. Every run
 * creation and every attach pays for these, and libsodium does them in a fraction of what
 * node:crypto and tweetnacl take (Ed25519 verification about 50 µs against 125, sealing a
 * bundle 4 µs against 20; bench/attach.ts). The agent keeps the pure-JavaScript and node:crypto
 * side in common/, so its one-file build carries no native module; test/runs/native.test.ts
 * checks that the two sides agree byte for byte.
 */

const SIGNATURE_BYTES = 64;
const NONCE_BYTES = 24;
const MAC_BYTES = 16;

export interface Credential {
  /** The 32-byte Ed25519 seed: what the holder keeps secret. */
  credential: Buffer;
  /** The public key, base64: what the control plane stores. */
  verifier: string;
}

/** A fresh credential (a bootstrap secret or a resume credential) and its verifier. */
export function newCredential(): Credential {
  const seed = Buffer.alloc(CREDENTIAL_BYTES);
  sodium.randombytes_buf(seed);
  const publicKey = Buffer.alloc(32);
  const secretKey = Buffer.alloc(64);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  // The expanded secret key holds the seed in its first half.
  secretKey.fill(0);
  return { credential: seed, verifier: publicKey.toString('base64') };
}

/** Whether `proof` is the holder of `verifier`'s signature of the attach statement. */
export function verifyProof(
  verifier: string,
  proof: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): boolean {
  const publicKey = Buffer.from(verifier, 'base64');
  if (publicKey.length !== 32 || proof.length !== SIGNATURE_BYTES) return false;
  return sodium.crypto_sign_verify_detached(
    asBuffer(proof),
    statement(kind, runId, agentPublicKey),
    publicKey,
  );
}

/** nacl.box.before of (agent key, run key): what common/sealing's sharedKey computes. */
export function sharedKey(publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_BYTES || secretKey.length !== SECRET_KEY_BYTES) {
    throw new BundleError();
  }
  const secret = Buffer.alloc(32);
  try {
    sodium.crypto_scalarmult(secret, asBuffer(secretKey), asBuffer(publicKey));
  } catch {
    // libsodium refuses a low-order point (an all-zero result), as node:crypto does.
    throw new BundleError();
  }
  const shared = boxKeyOf(secret);
  secret.fill(0);
  return shared;
}

/** nacl.box.after with a fresh random nonce: the same bytes as common/sealing's sealWith. */
export function sealWith(plaintext: Uint8Array, shared: Uint8Array): Sealed {
  const nonce = Buffer.alloc(NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  const box = Buffer.alloc(plaintext.length + MAC_BYTES);
  sodium.crypto_secretbox_easy(box, asBuffer(plaintext), nonce, asBuffer(shared));
  return { nonce, box };
}

/** A Buffer over the same bytes (no copy): sodium-native's types ask for Buffers. */
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
