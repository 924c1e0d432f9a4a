import { createPrivateKey, type KeyObject, sign } from 'node:crypto';

/**
 * Attach proofs (docs/protocol.md). A credential (the bootstrap secret, or a resume
 * credential) is the 32-byte seed of an Ed25519 key pair (RFC 8032), made by the control plane,
 * which keeps only the public half (the verifier). The credential never crosses the wire: the
 * agent signs a statement that names the run and its own ephemeral X25519 key. A logged request
 * therefore cannot bind another key, and a copy of the database cannot forge a proof. This is
 * the agent's side; the control plane makes credentials and verifies proofs in
 * server/crypto/native.ts.
 */
export type ProofKind = 'bootstrap' | 'resume';

export const CREDENTIAL_BYTES = 32;

/** DER prefix that wraps a raw Ed25519 seed as PKCS#8 for node:crypto. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

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

export function prove(
  credential: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): Buffer {
  return sign(null, statement(kind, runId, agentPublicKey), signingKeyOf(credential));
}

/** Credentials travel as base64url text (env vars, files, the bundle). */
export function decodeCredential(text: string): Uint8Array | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed, 'base64url');
  return bytes.length === CREDENTIAL_BYTES ? bytes : undefined;
}
