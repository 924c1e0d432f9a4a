import { createHmac } from 'node:crypto';
import nacl from 'tweetnacl';

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

function keyPairOf(credential: Uint8Array): nacl.SignKeyPair {
  const seed = createHmac('sha256', credential).update(SEED_LABEL).digest();
  const pair = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  return pair;
}

export function statement(kind: ProofKind, runId: string, agentPublicKey: Uint8Array): Buffer {
  const key = Buffer.from(agentPublicKey).toString('base64');
  return Buffer.from(`runkeys attach v1\n${kind}\n${runId}\n${key}`, 'utf8');
}

/** The public verifier of a credential, base64; what the control plane stores. */
export function verifierOf(credential: Uint8Array): string {
  return Buffer.from(keyPairOf(credential).publicKey).toString('base64');
}

export function prove(
  credential: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): Uint8Array {
  const pair = keyPairOf(credential);
  const sig = nacl.sign.detached(statement(kind, runId, agentPublicKey), pair.secretKey);
  pair.secretKey.fill(0);
  return sig;
}

export function verifyProof(
  verifier: string,
  proof: Uint8Array,
  kind: ProofKind,
  runId: string,
  agentPublicKey: Uint8Array,
): boolean {
  const pub = Buffer.from(verifier, 'base64');
  if (pub.length !== nacl.sign.publicKeyLength || proof.length !== nacl.sign.signatureLength) {
    return false;
  }
  return nacl.sign.detached.verify(statement(kind, runId, agentPublicKey), proof, pub);
}

/** Credentials travel as base64url text (env vars, files, the bundle). */
export function decodeCredential(text: string): Uint8Array | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed, 'base64url');
  return bytes.length === CREDENTIAL_BYTES ? bytes : undefined;
}
