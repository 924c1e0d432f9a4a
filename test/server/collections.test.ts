import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionServiceService as Collections } from '../../proto/gen/runkeys/v1/collections.js';
import { LightAgent } from '../helpers/accounts.js';
import { Rpc } from '../helpers/rpc.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// A collection's outage limit (max_offline_seconds): stored, shown, changed only when an update
// sets it, audited, and sent to attached runs in a new bundle.

let srv: TestServer;
let rpc: Rpc;
let cp: ControlPlane;

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
  cp = controlPlane(srv.address, srv.rootToken);
});

afterAll(async () => {
  cp.close();
  rpc.close();
  await srv.close();
});

const create = (name: string, maxOfflineSeconds: number, description = '') =>
  rpc.call(Collections.createCollection, { name, description, maxOfflineSeconds }, srv.rootToken);

type Update = { description?: string; maxOfflineSeconds?: number };
const update = async (name: string, fields: Update) =>
  (await rpc.call(Collections.updateCollection, { name, ...fields }, srv.rootToken)).collection;

const shown = (c: { description: string; maxOfflineSeconds: number } | undefined) => [
  c?.description,
  c?.maxOfflineSeconds,
];

describe('CollectionService max_offline_seconds', () => {
  it('keeps the limit a collection is created with; get and list show it', async () => {
    expect((await create('weekly', 604_800)).collection?.maxOfflineSeconds).toBe(604_800);
    expect((await create('plain', 0)).collection?.maxOfflineSeconds).toBe(0);

    const got = await rpc.call(Collections.getCollection, { name: 'weekly' }, srv.rootToken);
    expect(got.collection?.maxOfflineSeconds).toBe(604_800);
    const listed = await rpc.call(Collections.listCollections, {}, srv.rootToken);
    expect(listed.collections.map((c) => [c.name, c.maxOfflineSeconds])).toEqual([
      ['plain', 0],
      ['weekly', 604_800],
    ]);
  });

  it("changes only the fields an update sets; 0 goes back to the agent's own", async () => {
    await create('partial', 600, 'first');
    expect(shown(await update('partial', { description: 'second' }))).toEqual(['second', 600]);
    expect(shown(await update('partial', { maxOfflineSeconds: 60 }))).toEqual(['second', 60]);
    expect(shown(await update('partial', { maxOfflineSeconds: 0 }))).toEqual(['second', 0]);
    expect(shown(await update('partial', { description: '' }))).toEqual(['', 0]);

    const got = await rpc.call(Collections.getCollection, { name: 'partial' }, srv.rootToken);
    expect(shown(got.collection)).toEqual(['', 0]);
  });

  it('audits the fields each update set and the new limit, not the description', async () => {
    await create('audited', 0, 'secret plans');
    await update('audited', { description: 'more secret plans' });
    await update('audited', { description: 'x', maxOfflineSeconds: 900 });
    const events = (await cp.auditOf('audited', 'audited')).map((e) => [e.action, e.details]);
    expect(events).toEqual([
      ['collection.create', { max_offline_seconds: '0' }],
      ['collection.update', { fields: 'description' }],
      [
        'collection.update',
        { fields: 'description,max_offline_seconds', max_offline_seconds: '900' },
      ],
    ]);
  });

  it('sends attached runs a new bundle when the limit changes, and only then', async () => {
    await create('live', 0);
    await cp.setProvider('live', 'anthropic', { apiKey: 'sk-ant-live-limit-0123456789' });
    const agent = new LightAgent(cp.agent, await cp.createRun('live', 'anthropic'));
    try {
      const first = await waitFor(() => agent.latest(), 5000, 'the first bundle');
      expect(first.maxOfflineSeconds).toBe(0);

      await update('live', { maxOfflineSeconds: 300 });
      await waitFor(() => agent.latest()?.maxOfflineSeconds === 300, 5000, 'the new limit');
      // Neither the same limit again nor a description changes what runs receive.
      await update('live', { maxOfflineSeconds: 300 });
      await update('live', { description: 'changed' });
      await update('live', { maxOfflineSeconds: 0 });
      await waitFor(() => agent.latest()?.maxOfflineSeconds === 0, 5000, 'the reset');
      expect(agent.bundles.map((b) => [b.version - first.version, b.maxOfflineSeconds])).toEqual([
        [0, 0],
        [1, 300],
        [2, 0],
      ]);
    } finally {
      agent.stop();
    }
  });
});
