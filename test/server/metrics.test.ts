import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightAgent } from '../helpers/accounts.js';
import { AttachStream, agentKeys, attachRequest } from '../helpers/attach.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// /metrics, /healthz and /readyz on the HTTP listener: the counters move with what happened,
// and no value, variable name or collection name ever appears in a label.

const VALUE = 'metrics-canary-value-7f3a91c2e';
let srv: TestServer;
let cp: ControlPlane;
let base: string;

const metric = (text: string, line: string): number | undefined => {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
};

beforeAll(async () => {
  srv = await startTestServer({ http: true });
  base = `http://${srv.server.http!.address}`;
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('secret-tenant-name');
  await cp.setProvider('secret-tenant-name', 'openai', { apiKey: 'sk-metrics-test-00000001' });
  await cp.setEnv('secret-tenant-name', 'CANARY_VARIABLE_NAME', VALUE);
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

describe('the HTTP listener', () => {
  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
  });

  it('counts attaches, deliveries and RPCs; no value or name in any label', async () => {
    const run = await cp.createRun('secret-tenant-name', 'openai');
    const agent = new LightAgent(cp.agent, run);
    await waitFor(() => agent.value('CANARY_VARIABLE_NAME'), 5_000, 'the bundle');
    // A second attach with the used secret is refused.
    const again = new AttachStream(
      cp.agent,
      attachRequest({
        runId: run.run!.id,
        credential: Buffer.from(run.bootstrapSecret, 'base64url'),
        keys: agentKeys(),
      }),
    );
    await again.closed();
    await cp.setEnv('secret-tenant-name', 'CANARY_VARIABLE_NAME', `${VALUE}-2`);
    await waitFor(() => agent.value('CANARY_VARIABLE_NAME') === `${VALUE}-2`, 5_000, 'update');
    const during = await (await fetch(`${base}/metrics`)).text();
    expect(metric(during, 'runkeys_attached_agents')).toBe(1);

    await cp.endRun('secret-tenant-name', run.run!.id);
    await waitFor(
      async () => {
        const t = await (await fetch(`${base}/metrics`)).text();
        return metric(t, 'runkeys_attached_agents') === 0;
      },
      5_000,
      'the stream to end',
    );
    agent.stop();

    const text = await (await fetch(`${base}/metrics`)).text();
    expect(metric(text, 'runkeys_attaches_total{kind="attach",outcome="ok"}')).toBe(1);
    expect(metric(text, 'runkeys_attaches_total{kind="attach",outcome="refused"}')).toBe(1);
    expect(metric(text, 'runkeys_deliveries_total{kind="bundle"}')).toBe(1);
    expect(metric(text, 'runkeys_deliveries_total{kind="update"}')).toBe(1);
    expect(metric(text, 'runkeys_deliveries_total{kind="revocation"}')).toBe(1);
    expect(metric(text, 'runkeys_update_fanout_seconds_count')).toBe(1);
    expect(
      metric(
        text,
        'runkeys_rpc_duration_seconds_count{method="runkeys.v1.CollectionService/CreateCollection",code="OK"}',
      ),
    ).toBe(1);
    expect(metric(text, 'runkeys_accounts{status="connected"}')).toBe(0);
    expect(text).toContain('runkeys_process_cpu_seconds_total');
    for (const secret of [VALUE, 'CANARY_VARIABLE_NAME', 'secret-tenant-name', srv.rootToken]) {
      expect(text).not.toContain(secret);
    }
  });
});
