import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightAgent } from '../helpers/accounts.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// One change fanned out to many streams: every agent gets the same new version, and every
// delivery is recorded (delivered version and a run.deliver event) though they are written in
// batches.

const AGENTS = 40;
let srv: TestServer;
let cp: ControlPlane;
const agents: LightAgent[] = [];

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: 'sk-fanout-test-00000001' });
  await cp.setEnv('acme', 'FEATURE', 'v1', false);
});

afterAll(async () => {
  for (const a of agents) a.stop();
  cp.close();
  await srv.close();
});

describe('a change fanned out', () => {
  it('reaches every stream once, and each delivery is recorded', async () => {
    const runs = await Promise.all(
      Array.from({ length: AGENTS }, () => cp.createRun('acme', 'openai')),
    );
    agents.push(...runs.map((r) => new LightAgent(cp.agent, r)));
    await waitFor(() => agents.every((a) => a.value('FEATURE') === 'v1'), 10_000, 'v1');
    const before = agents[0]!.latest()!.version;

    await cp.setEnv('acme', 'FEATURE', 'v2', false);
    await waitFor(() => agents.every((a) => a.value('FEATURE') === 'v2'), 5_000, 'v2');
    const version = agents[0]!.latest()!.version;
    expect(version).toBeGreaterThan(before);
    for (const a of agents) {
      expect(a.bundles.map((b) => b.version)).toEqual([before, version]);
      const run = await cp.getRun('acme', a.run.run!.id);
      expect(run.deliveredVersion).toBe(version);
      const delivered = (await cp.auditOf('acme', a.run.run!.id))
        .filter((e) => e.action === 'run.deliver')
        .map((e) => e.details.version);
      expect(delivered).toEqual([String(before), String(version)]);
    }
  });
});
