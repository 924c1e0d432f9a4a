import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { newRawKeyPair } from './keys.js';

/**
 * Attach proofs (docs/protocol.md). A credential (the bootstrap secret, or a resume
 * credential) is the 32-byte seed of an Ed25519 key pair (RFC 8032), made by the control plane,
 * which keeps only the public half (the verifier). The credential never crosses the wire: the
 * agent signs a statement that names the run and its own ephemeral X25519 key. A logged request
 * therefore cannot bind another key, and a copy of the database cannot forge a proof.
 */
export type ProofKind = 'bootstrap' | 'resume';

export const CREDENTIAL_BYTES = 32;
const SIGNATURE_BYTES = 64;
const PUBLIC_KEY_BYTES = 32;

/** DER prefix that wraps a raw Ed25519 seed as PKCS#8 for node:crypto. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Credential {
  /** The seed: what the holder keeps secret. */
  credential: Buffer;
  /** The public key, base64: what the control plane stores. */
  verifier: string;
}

/** A fresh credential and its verifier. */
export function newCredential(): Credential {
  const { secret, publicKey } = newRawKeyPair('Ed25519');
  return { credential: secret, verifier: publicKey.toString('base64') };
}

function signingKeyOf(credential: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX, credential]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return key;
}

export function statement(kind: ProofKind, runId: string, agentPublicKey: Uint8Array): Buffer {
  const key = Buffer.from(agentPublicKey).toString('base64');
  return Buffer.from(`runkeys attach v1\n${kind}\n${runId}\n${key}`, 'utf8');
}

/** The verifier of a credential, base64 (what newCredential returned beside it). */
export function verifierOf(credential: Uint8Array): string {
  const jwk = createPublicKey(signingKeyOf(credential)).export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64');
}

export function prove(
  credential: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): Buffer {
  return sign(null, statement(kind, runId, agentPublicKey), signingKeyOf(credential));
}

export function verifyProof(
  verifier: string,
  proof: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): boolean {
  const raw = Buffer.from(verifier, 'base64');
  if (raw.length !== PUBLIC_KEY_BYTES || proof.length !== SIGNATURE_BYTES) return false;
  // A JWK imports several times faster than the same key as DER.
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  return verify(null, statement(kind, runId, agentPublicKey), key, proof);
}

/** Credentials travel as base64url text (env vars, files, the bundle). */
export function decodeCredential(text: string): Uint8Array | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed, 'base64url');
  return bytes.length === CREDENTIAL_BYTES ? bytes : undefined;
}
