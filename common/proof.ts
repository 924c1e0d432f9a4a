import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';

/**
 * Attach proofs (docs/protocol.md). A 256-bit credential (the bootstrap secret, or a resume
 * credential) never crosses the wire; it seeds an Ed25519 key pair. The control plane keeps only
 * the public half (the verifier); the agent signs a statement that names the run and its own
 * ephemeral X25519 key. A logged request therefore cannot bind another key, and a copy of the
 * database cannot forge a proof.
 */
export type ProofKind = 'bootstrap' | 'resume';

const SEED_LABEL = 'runkeys/proof-seed/v1';
export const CREDENTIAL_BYTES = 32;
const SIGNATURE_BYTES = 64;
const PUBLIC_KEY_BYTES = 32;

/** DER prefixes that wrap a raw Ed25519 seed (PKCS#8) and public key (SPKI) for node:crypto. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Ed25519 through node:crypto (RFC 8032): the same keys and signatures as any other. */
function signingKeyOf(credential: Uint8Array): KeyObject {
  const seed = createHmac('sha256', credential).update(SEED_LABEL).digest();
  const der = Buffer.concat([PKCS8_PREFIX, seed]);
  seed.fill(0);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return key;
}

export function statement(kind: ProofKind, runId: string, agentPublicKey: Uint8Array): Buffer {
  const key = Buffer.from(agentPublicKey).toString('base64');
  return Buffer.from(`runkeys attach v1\n${kind}\n${runId}\n${key}`, 'utf8');
}

/** The public verifier of a credential, base64; what the control plane stores. */
export function verifierOf(credential: Uint8Array): string {
  const jwk = createPublicKey(signingKeyOf(credential)).export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64');
}

export function prove(
  credential: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): Uint8Array {
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
  const key = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, raw]),
    format: 'der',
    type: 'spki',
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
