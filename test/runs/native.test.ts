import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { prove } from '../../common/proof.js';
import * as agentSide from '../../common/sealing.js';
import { BundleError } from '../../common/sealing.js';
import * as native from '../../server/crypto/native.js';

// The control plane does its side of the protocol through libsodium; agents do theirs through
// node:crypto and tweetnacl. Whatever one side makes, the other must take, byte for byte.

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const runId = fc.stringMatching(/^run_[0-9a-f]{16}$/);
const kind = fc.constantFrom('bootstrap' as const, 'resume' as const);

describe('credentials and proofs (libsodium) against the agent side (node:crypto)', () => {
  it('makes distinct credentials whose verifier is the Ed25519 public key of the seed', () => {
    const made = Array.from({ length: 200 }, () => native.newCredential());
    for (const { credential, verifier } of made) {
      expect(credential.length).toBe(32);
      const pair = nacl.sign.keyPair.fromSeed(credential);
      expect(verifier).toBe(Buffer.from(pair.publicKey).toString('base64'));
    }
    expect(new Set(made.map((c) => c.credential.toString('hex'))).size).toBe(made.length);
  });

  it("accepts the agent's proof, and nothing that differs in kind, run, key or a bit", () => {
    fc.assert(
      fc.property(
        kind,
        runId,
        runId,
        bytes32,
        bytes32,
        fc.nat(63),
        (k, run, otherRun, key, otherKey, bit) => {
          const { credential, verifier } = native.newCredential();
          const proof = prove(credential, k, run, key);
          expect(native.verifyProof(verifier, proof, k, run, key)).toBe(true);
          const otherKind = k === 'bootstrap' ? 'resume' : 'bootstrap';
          expect(native.verifyProof(verifier, proof, otherKind, run, key)).toBe(false);
          if (otherRun !== run) {
            expect(native.verifyProof(verifier, proof, k, otherRun, key)).toBe(false);
          }
          if (!Buffer.from(otherKey).equals(Buffer.from(key))) {
            expect(native.verifyProof(verifier, proof, k, run, otherKey)).toBe(false);
          }
          const flipped = Buffer.from(proof);
          flipped[bit] = (flipped[bit] ?? 0) ^ 1;
          expect(native.verifyProof(verifier, flipped, k, run, key)).toBe(false);
          const stranger = native.newCredential().verifier;
          expect(native.verifyProof(stranger, proof, k, run, key)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses proofs and verifiers of the wrong length without throwing', () => {
    const { credential, verifier } = native.newCredential();
    const key = new Uint8Array(32);
    const proof = prove(credential, 'bootstrap', 'run_0123456789abcdef', key);
    const run = 'run_0123456789abcdef';
    expect(native.verifyProof(verifier, proof.subarray(0, 63), 'bootstrap', run, key)).toBe(false);
    expect(native.verifyProof(verifier, new Uint8Array(0), 'bootstrap', run, key)).toBe(false);
    expect(native.verifyProof('', proof, 'bootstrap', run, key)).toBe(false);
    expect(native.verifyProof(verifier.slice(4), proof, 'bootstrap', run, key)).toBe(false);
  });
});

describe('sealing (libsodium) against the agent side (tweetnacl)', () => {
  it('computes the same shared key as the agent and as nacl.box.before', () => {
    for (let i = 0; i < 200; i++) {
      const server = nacl.box.keyPair();
      const agent = agentSide.newKeyPair();
      const ours = native.sharedKey(agent.publicKey, server.secretKey);
      expect(Buffer.from(ours)).toEqual(
        Buffer.from(agentSide.sharedKey(server.publicKey, agent.secretKey)),
      );
      expect(Buffer.from(ours)).toEqual(
        Buffer.from(nacl.box.before(agent.publicKey, server.secretKey)),
      );
    }
  });

  it('seals what the agent opens, as nacl.box.after seals it, with a fresh nonce each time', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (plaintext) => {
        const server = nacl.box.keyPair();
        const agent = agentSide.newKeyPair();
        const shared = native.sharedKey(agent.publicKey, server.secretKey);
        const sealed = native.sealWith(plaintext, shared);
        expect(sealed.nonce.length).toBe(nacl.box.nonceLength);
        expect(Buffer.from(sealed.box)).toEqual(
          Buffer.from(nacl.box.after(plaintext, sealed.nonce, shared)),
        );
        const opened = agentSide.openWith(
          sealed,
          agentSide.sharedKey(server.publicKey, agent.secretKey),
        );
        expect(Buffer.from(opened)).toEqual(Buffer.from(plaintext));
        const again = native.sealWith(plaintext, shared);
        expect(Buffer.from(again.nonce)).not.toEqual(Buffer.from(sealed.nonce));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses low-order points and keys of the wrong length as the agent side does', () => {
    const server = nacl.box.keyPair();
    // The identity and a point of order 8 on Curve25519: the exchange would give all zeros.
    const lowOrder = [
      new Uint8Array(32),
      Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
    ];
    for (const point of lowOrder) {
      expect(() => native.sharedKey(point, server.secretKey)).toThrow(BundleError);
      expect(() => agentSide.sharedKey(point, server.secretKey)).toThrow(BundleError);
    }
    expect(() => native.sharedKey(new Uint8Array(31), server.secretKey)).toThrow(BundleError);
    expect(() => native.sharedKey(server.publicKey, new Uint8Array(33))).toThrow(BundleError);
  });
});
