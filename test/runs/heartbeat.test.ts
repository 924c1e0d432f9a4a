import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HEARTBEAT_MS } from '../../server/runs/attach.js';
import {
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
import { waitFor } from '../helpers/wait.js';

// The control plane's heartbeats are sealed like its bundles: only the agent the run is bound to
// can open them, so nobody on the path can forge one to hold off the agent's outage deadline.

let srv: TestServer;
let cp: ControlPlane;

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-heartbeat-0123456789' });
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

/**
 * Attaches while catching the stream's heartbeat timer, so the test fires it rather than
 * waiting 15 s; the timer still runs as set.
 */
async function attachCatchingBeat() {
  const res = await cp.createRun('acme', 'anthropic');
  const keys = agentKeys();
  const beats: (() => void)[] = [];
  const real = globalThis.setInterval;
  const spy = vi.spyOn(globalThis, 'setInterval').mockImplementation(((
    fn: () => void,
    ms?: number,
  ) => {
    if (ms === HEARTBEAT_MS) beats.push(fn);
    return real(fn, ms);
  }) as unknown as typeof setInterval);
  const stream = new AttachStream(
    cp.agent,
    attachRequest({ runId: res.run!.id, credential: secretOf(res.bootstrapSecret), keys }),
  );
  try {
    const first = await stream.next();
    const beat = await waitFor(() => beats[0], 5000, 'the heartbeat timer');
    return { res, keys, stream, first, beat, serverKey: keyOf(res.serverPublicKey) };
  } finally {
    spy.mockRestore();
  }
}

describe('Attach heartbeats', () => {
  it('are sealed to the agent key like the bundle, and name the run', async () => {
    const { res, keys, stream, first, beat, serverKey } = await attachCatchingBeat();
    try {
      expect(bundleOf(openEnvelope(first, serverKey, keys)).version).toBeGreaterThan(0);
      beat();
      beat();
      for (let i = 0; i < 2; i++) {
        const envelope = openEnvelope(await stream.next(), serverKey, keys);
        expect(envelope.runId).toBe(res.run!.id);
        expect(envelope.body?.$case).toBe('heartbeat');
      }
    } finally {
      stream.cancel();
    }
  });

  it('cannot be opened with any other agent key', async () => {
    const { stream, beat, serverKey } = await attachCatchingBeat();
    try {
      beat();
      const sealed = await stream.next();
      expect(() => openEnvelope(sealed, serverKey, agentKeys())).toThrow(
        'bundle could not be opened',
      );
    } finally {
      stream.cancel();
    }
  });
});
