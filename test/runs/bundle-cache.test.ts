import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentServiceClient } from '../../proto/gen/runkeys/v1/runs.js';
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
import { adminClients, call, startTestServer, type TestServer } from '../helpers/server.js';

// The control plane keeps assembled bundles by collection, provider and version. What a run
// receives must still be exactly what the collection holds when it attaches.

let srv: TestServer;
let cp: ControlPlane;
let agents: AgentServiceClient;

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  agents = new AgentServiceClient(srv.address, credentials.createInsecure());
});

afterAll(async () => {
  agents.close();
  cp.close();
  await srv.close();
});

/** Creates a run, attaches to it and returns the first bundle's entries as name -> value. */
async function attachAndRead(collection: string, provider: string) {
  const res = await cp.createRun(collection, provider);
  const keys = agentKeys();
  const req = attachRequest({
    runId: res.run!.id,
    credential: secretOf(res.bootstrapSecret),
    keys,
  });
  const stream = new AttachStream(agents, req);
  const bundle = bundleOf(openEnvelope(await stream.next(), keyOf(res.serverPublicKey), keys));
  stream.cancel();
  return Object.fromEntries(bundle.entries.map((e) => [e.name, e.value]));
}

describe('assembled bundles', () => {
  it('gives a second run of the same version the same entries', async () => {
    await cp.createCollection('same');
    await cp.setProvider('same', 'anthropic', { apiKey: 'sk-ant-same-0123456789' });
    await cp.setEnv('same', 'TOKEN', 'token-same-1111');
    const first = await attachAndRead('same', 'anthropic');
    expect(await attachAndRead('same', 'anthropic')).toEqual(first);
  });

  it('gives each provider its own key at one version', async () => {
    await cp.createCollection('two');
    await cp.setProvider('two', 'anthropic', { apiKey: 'sk-ant-two-0123456789' });
    await cp.setProvider('two', 'openai', { apiKey: 'sk-openai-two-0123456789' });
    expect(await attachAndRead('two', 'anthropic')).toEqual({
      ANTHROPIC_API_KEY: 'sk-ant-two-0123456789',
    });
    expect(await attachAndRead('two', 'openai')).toEqual({
      OPENAI_API_KEY: 'sk-openai-two-0123456789',
    });
  });

  it('never serves a deleted collection to one made again under its name', async () => {
    await cp.createCollection('again');
    await cp.setProvider('again', 'anthropic', { apiKey: 'sk-ant-old-0123456789' });
    expect((await attachAndRead('again', 'anthropic')).ANTHROPIC_API_KEY).toBe(
      'sk-ant-old-0123456789',
    );
    const { collections } = adminClients(srv.address);
    await call(collections.deleteCollection.bind(collections), { name: 'again' }, srv.rootToken);
    collections.close();
    // Made again, the collection reaches the same version number with a different key.
    await cp.createCollection('again');
    await cp.setProvider('again', 'anthropic', { apiKey: 'sk-ant-new-0123456789' });
    expect((await attachAndRead('again', 'anthropic')).ANTHROPIC_API_KEY).toBe(
      'sk-ant-new-0123456789',
    );
  });
});
