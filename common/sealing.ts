import nacl from 'tweetnacl';

/**
 * Messages from the control plane to one agent: nacl.box (X25519, XSalsa20-Poly1305) from the
 * control plane's run key to the agent's ephemeral key, with a fresh random nonce each time.
 * Only that agent can open them, and it can tell they came from the key it pinned.
 */
export const PUBLIC_KEY_BYTES = nacl.box.publicKeyLength;

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

export function sealFor(
  plaintext: Uint8Array,
  agentPublicKey: Uint8Array,
  serverSecretKey: Uint8Array,
): Sealed {
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  return { nonce, box: nacl.box(plaintext, nonce, agentPublicKey, serverSecretKey) };
}

export function openFrom(
  sealed: Sealed,
  serverPublicKey: Uint8Array,
  agentSecretKey: Uint8Array,
): Uint8Array {
  if (
    sealed.nonce.length !== nacl.box.nonceLength ||
    serverPublicKey.length !== PUBLIC_KEY_BYTES ||
    sealed.box.length < nacl.box.overheadLength
  ) {
    throw new BundleError();
  }
  const opened = nacl.box.open(sealed.box, sealed.nonce, serverPublicKey, agentSecretKey);
  if (opened === null) throw new BundleError();
  return opened;
}
