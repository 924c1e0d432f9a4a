import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import nacl from 'tweetnacl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, openFrom, type Sealed, sealFor } from '../../common/sealing.js';
import { Envelope, type SealedMessage } from '../../proto/gen/runkeys/v1/runs.js';
import { BOOTSTRAP_LIFETIME_MS } from '../../server/runs/service.js';
import {
  type AgentKeys,
  AttachStream,
  agentKeys,
  attachRequest,
  bundleOf,
  keyOf,
  openEnvelope,
  secretOf,
} from '../helpers/attach.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The attach handshake and the sealing of what follows, driven message by message against a real
// control plane; the agent's side is written out in test/helpers/attach.ts.

const REFUSED = {
  code: status.UNAUTHENTICATED,
  details:
    'attach refused: no run is waiting for this bootstrap secret and key ' +
    '(a secret is single use and expires 10 minutes after the run is created)',
};
const ANTHROPIC_KEY = 'sk-ant-attach-0123456789';

/** How far the control plane's clock runs ahead of the real one. */
let skew = 0;
let srv: TestServer;
let cp: ControlPlane;

beforeAll(async () => {
  srv = await startTestServer({ now: () => Date.now() + skew });
  cp = controlPlane(srv.address, srv.rootToken);
  for (const c of ['acme', 'other']) {
    await cp.createCollection(c);
    await cp.setProvider(c, 'anthropic', { apiKey: ANTHROPIC_KEY });
  }
  await cp.setEnv('acme', 'DB_PASSWORD', 'hunter2-attach');
});

afterEach(() => {
  skew = 0;
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

interface NewRun {
  runId: string;
  secret: Uint8Array;
  serverKey: Uint8Array;
}

async function newRun(collection = 'acme'): Promise<NewRun> {
  const res = await cp.createRun(collection, 'anthropic');
  return {
    runId: res.run!.id,
    secret: secretOf(res.bootstrapSecret),
    serverKey: keyOf(res.serverPublicKey),
  };
}

/** Attaches with a bootstrap proof made from `credential` (the run's secret by default). */
function attach(run: NewRun, keys: AgentKeys, credential = run.secret): AttachStream {
  return new AttachStream(cp.agent, attachRequest({ runId: run.runId, credential, keys }));
}

/** Attaches and returns the first sealed message; the stream stays open until cancelled. */
async function firstMessage(run: NewRun, keys: AgentKeys): Promise<SealedMessage> {
  const stream = attach(run, keys);
  const sealed = await stream.next();
  stream.cancel();
  return sealed;
}

describe('Attach', () => {
  it('answers a bootstrap proof with a bundle the agent opens with the pinned key', async () => {
    const run = await newRun();
    const keys = agentKeys();
    const envelope = openEnvelope(await firstMessage(run, keys), run.serverKey, keys);
    expect(envelope.runId).toBe(run.runId);
    const entries = bundleOf(envelope).entries.map((e) => [e.name, e.value, e.sensitive]);
    expect(entries).toEqual([
      ['ANTHROPIC_API_KEY', ANTHROPIC_KEY, true],
      ['DB_PASSWORD', 'hunter2-attach', true],
    ]);
  });

  it('refuses a replayed attach with another key', async () => {
    const run = await newRun();
    const genuine = attachRequest({ runId: run.runId, credential: run.secret, keys: agentKeys() });
    const replay = { ...genuine, agentPublicKey: Buffer.from(agentKeys().publicKey) };
    expect(await new AttachStream(cp.agent, replay).closed()).toEqual(REFUSED);
  });

  it('still accepts the genuine attach after a replay with another key was refused', async () => {
    const run = await newRun();
    const keys = agentKeys();
    const genuine = attachRequest({ runId: run.runId, credential: run.secret, keys });
    const replay = { ...genuine, agentPublicKey: Buffer.from(agentKeys().publicKey) };
    await new AttachStream(cp.agent, replay).closed();
    const stream = new AttachStream(cp.agent, genuine);
    expect(openEnvelope(await stream.next(), run.serverKey, keys).runId).toBe(run.runId);
    stream.cancel();
  });

  it('refuses a second attach with the same secret and the same key', async () => {
    const run = await newRun();
    const keys = agentKeys();
    await firstMessage(run, keys);
    expect(await attach(run, keys).closed()).toEqual(REFUSED);
  });

  it('of many attaches racing with one secret, one gets the run (claims committed together)', async () => {
    const run = await newRun();
    // Sent at once, their claims reach the store in the same turn and share one commit.
    const streams = Array.from({ length: 8 }, () => attach(run, agentKeys()));
    const outcomes = await Promise.all(
      streams.map(async (s) => {
        try {
          await s.next(5000);
          s.cancel();
          return 'bundle';
        } catch {
          return JSON.stringify(await s.closed());
        }
      }),
    );
    expect(outcomes.filter((o) => o === 'bundle')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'bundle')).toEqual(Array(7).fill(JSON.stringify(REFUSED)));
    const attachEvents = (await cp.auditOf('acme', run.runId)).filter(
      (e) => e.action === 'run.attach',
    );
    expect(attachEvents).toHaveLength(1);
  });

  it('refuses a second attach with the same secret and another key', async () => {
    const run = await newRun();
    await firstMessage(run, agentKeys());
    expect(await attach(run, agentKeys()).closed()).toEqual(REFUSED);
  });

  it('refuses a bootstrap secret 10 minutes after the run was created', async () => {
    const run = await newRun();
    skew = BOOTSTRAP_LIFETIME_MS + 1000;
    expect(await attach(run, agentKeys()).closed()).toEqual(REFUSED);
  });

  it('accepts a bootstrap secret shortly before its 10 minutes are up', async () => {
    const run = await newRun();
    const keys = agentKeys();
    skew = BOOTSTRAP_LIFETIME_MS - 5000;
    expect(openEnvelope(await firstMessage(run, keys), run.serverKey, keys).runId).toBe(run.runId);
  });

  it('refuses a proof made without the bootstrap secret', async () => {
    const run = await newRun();
    expect(await attach(run, agentKeys(), randomBytes(32)).closed()).toEqual(REFUSED);
  });

  it("refuses run A's bootstrap secret used with run B's id", async () => {
    const a = await newRun('acme');
    const b = await newRun('other');
    const stream = attach({ ...b, secret: a.secret }, agentKeys());
    expect(await stream.closed()).toEqual(REFUSED);
  });

  it("refuses run A's proof sent with run B's id", async () => {
    const a = await newRun('acme');
    const b = await newRun('other');
    const req = attachRequest({
      runId: b.runId,
      provenRunId: a.runId,
      credential: a.secret,
      keys: agentKeys(),
    });
    expect(await new AttachStream(cp.agent, req).closed()).toEqual(REFUSED);
  });

  it('refuses a bootstrap proof sent as a resume proof', async () => {
    const run = await newRun();
    const req = attachRequest({ runId: run.runId, credential: run.secret, keys: agentKeys() });
    const swapped = { ...req, bootstrapProof: Buffer.alloc(0), resumeProof: req.bootstrapProof };
    const outcome = await new AttachStream(cp.agent, swapped).closed();
    expect(outcome.code).toBe(status.UNAUTHENTICATED);
  });
});

describe('openFrom()', () => {
  const OPEN_FAILED = 'bundle could not be opened';
  let run: NewRun;
  let keys: AgentKeys;
  let sealed: SealedMessage;

  beforeAll(async () => {
    run = await newRun();
    keys = agentKeys();
    sealed = await firstMessage(run, keys);
  });

  function flipped(field: 'nonce' | 'box', index: number): SealedMessage {
    const copy = { nonce: Buffer.from(sealed.nonce), box: Buffer.from(sealed.box) };
    const bytes = copy[field];
    const at = (index + bytes.length) % bytes.length;
    bytes[at] = bytes[at]! ^ 0x01;
    return copy;
  }

  /** The error openFrom throws, so its class and message can both be checked. */
  function openError(s: Sealed, serverKey = run.serverKey): unknown {
    try {
      openFrom(s, serverKey, keys.secretKey);
    } catch (err) {
      return err;
    }
    throw new Error('expected openFrom to fail, and it opened the message');
  }

  it('opens the untouched bundle', () => {
    expect(Envelope.decode(openFrom(sealed, run.serverKey, keys.secretKey)).runId).toBe(run.runId);
  });

  for (const [field, index, where] of [
    ['box', 0, 'the first byte of the MAC'],
    ['box', 20, 'the ciphertext'],
    ['box', -1, 'the last byte'],
    ['nonce', 0, 'the nonce'],
  ] as const) {
    it(`refuses a bundle with a flipped byte in ${where}: "${OPEN_FAILED}"`, () => {
      const err = openError(flipped(field, index));
      expect(err).toBeInstanceOf(BundleError);
      expect((err as Error).message).toBe(OPEN_FAILED);
    });
  }

  it(`refuses a bundle sealed by another key than the pinned one: "${OPEN_FAILED}"`, () => {
    const forger = nacl.box.keyPair();
    const forged = Envelope.encode({
      runId: run.runId,
      body: {
        $case: 'bundle',
        value: {
          version: 99,
          entries: [],
          files: [],
          accounts: [],
          unset: [],
          conflicts: [],
          resumeCredential: '',
          maxOfflineSeconds: 0,
          digest: '',
        },
      },
    }).finish();
    const err = openError(sealFor(forged, keys.publicKey, forger.secretKey));
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toBe(OPEN_FAILED);
  });

  it(`refuses a genuine bundle when the agent pinned another key: "${OPEN_FAILED}"`, () => {
    const err = openError(sealed, nacl.box.keyPair().publicKey);
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toBe(OPEN_FAILED);
  });
});
