import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  BundleError,
  newKeyPair,
  openFrom,
  openWith,
  sealFor,
  sealWith,
  sharedKey,
} from '../../common/sealing.js';

describe('sharedKey()', () => {
  it('equals nacl.box.before for the same keys', () => {
    for (let i = 0; i < 20; i++) {
      const a = nacl.box.keyPair();
      const b = newKeyPair();
      expect(Buffer.from(sharedKey(a.publicKey, b.secretKey))).toEqual(
        Buffer.from(nacl.box.before(a.publicKey, b.secretKey)),
      );
    }
  });
});

describe('sealFor() and openFrom()', () => {
  const server = newKeyPair();
  const agent = newKeyPair();
  const message = new TextEncoder().encode('bundle body');

  it('opens what was sealed to this agent by the pinned key, and nacl.box.open agrees', () => {
    const sealed = sealFor(message, agent.publicKey, server.secretKey);
    expect(openFrom(sealed, server.publicKey, agent.secretKey)).toEqual(message);
    expect(nacl.box.open(sealed.box, sealed.nonce, server.publicKey, agent.secretKey)).toEqual(
      message,
    );
  });

  it('refuses a flipped byte, a wrong key and a bad nonce with one message', () => {
    const sealed = sealWith(message, sharedKey(agent.publicKey, server.secretKey));
    const flipped = { nonce: sealed.nonce, box: Uint8Array.from(sealed.box) };
    flipped.box[5] ^= 1;
    const other = newKeyPair();
    const attempts = [
      () => openFrom(flipped, server.publicKey, agent.secretKey),
      () => openFrom(sealed, other.publicKey, agent.secretKey),
      () => openWith({ nonce: sealed.nonce.subarray(1), box: sealed.box }, new Uint8Array(32)),
    ];
    for (const attempt of attempts) {
      expect(attempt).toThrow(BundleError);
      expect(attempt).toThrow('bundle could not be opened');
    }
  });
});
