import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../proto/gen/runkeys/v1/admin.js';
import { makeSandbox, parseDotenv, spawnAgent, stopAgents } from '../helpers/agent.js';
import { AttachStream, agentKeys, attachRequest, secretOf } from '../helpers/attach.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// A run's life in the audit trail: who attached, what was delivered (version and names), how it
// ended. Values never appear there, nor in the server's log.

const VALUES = {
  ANTHROPIC_API_KEY: 'sk-ant-audit-5f2c8e1a9b3d4c7e',
  DB_PASSWORD: 'db-password-audit-81c4e2f0a7',
  ROTATED: 'rotated-value-audit-9e7d3b1c55',
  SERVICE_URL: 'https://plain-audit-config.example/v1',
};

let srv: TestServer;
let cp: ControlPlane;
let runId: string;
let events: AuditEvent[];

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: VALUES.ANTHROPIC_API_KEY });
  await cp.setEnv('acme', 'DB_PASSWORD', VALUES.DB_PASSWORD);
  await cp.setEnv('acme', 'SERVICE_URL', VALUES.SERVICE_URL, false);
  const run = await cp.createRun('acme', 'anthropic');
  runId = run.run!.id;
  const sandbox = makeSandbox();
  const agent = spawnAgent({ cwd: sandbox.dir, env: sandboxVariables(run, srv.address) });
  const dotenv = () => parseDotenv(readIfExists(sandbox.envFile) ?? '').dotenv;
  await waitFor(() => dotenv().DB_PASSWORD !== undefined, 10_000, 'the first .env');
  await cp.setEnv('acme', 'DB_PASSWORD', VALUES.ROTATED);
  await waitFor(() => dotenv().DB_PASSWORD === VALUES.ROTATED, 5000, 'the update');
  await cp.endRun('acme', runId);
  expect(await agent.exited).toEqual({ code: 0, signal: null });
  events = await cp.auditOf('acme', runId);
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await srv.close();
});

const ofAction = (action: string) => events.filter((e) => e.action === action);

describe("A run's audit trail", () => {
  it('holds creation, attach, two deliveries, end and revocation, in that order', () => {
    // Receipts come whenever the agent's report goes; they have their own test.
    const lifecycle = events.filter((e) => e.action !== 'run.receipt');
    expect(lifecycle.map((e) => e.action)).toEqual([
      'run.create',
      'run.attach',
      'run.deliver',
      'run.deliver',
      'run.end',
      'run.revoke',
    ]);
  });

  it("records the agent's receipt of both versions", async () => {
    const run = await cp.getRun('acme', runId);
    const receipts = ofAction('run.receipt').map((e) => [e.actor, e.details.version]);
    expect(receipts).toEqual([
      [runId, String(run.deliveredVersion - 1)],
      [runId, String(run.deliveredVersion)],
    ]);
    expect(run.appliedVersion).toBe(run.deliveredVersion);
  });

  it('records the attach as the run itself', () => {
    expect(ofAction('run.attach').map((e) => [e.actor, e.target])).toEqual([[runId, runId]]);
  });

  it('records each delivery with its version and the names it carried', async () => {
    const run = await cp.getRun('acme', runId);
    const deliveries = ofAction('run.deliver').map((e) => e.details);
    expect(deliveries).toEqual([
      { version: String(run.deliveredVersion - 1), names: expect.any(String) },
      { version: String(run.deliveredVersion), names: expect.any(String) },
    ]);
    for (const d of deliveries) {
      expect(d.names!.split(',')).toEqual(['ANTHROPIC_API_KEY', 'DB_PASSWORD', 'SERVICE_URL']);
    }
  });

  it('records who ended the run, and the revocation it sent', () => {
    const root = ofAction('run.create')[0]!.actor;
    expect(ofAction('run.end').map((e) => e.actor)).toEqual([root]);
    expect(ofAction('run.revoke').map((e) => e.details)).toEqual([{ reason: 'ended' }]);
  });

  it('puts no value in any field of any event of the collection', async () => {
    const all = JSON.stringify(await cp.auditOf('acme', ''));
    for (const value of Object.values(VALUES)) {
      for (const form of [value, Buffer.from(value).toString('base64')]) {
        expect(all).not.toContain(form);
      }
    }
  });

  it('logs no value on the server', () => {
    const log = srv.logs.text();
    expect(log).toContain(runId);
    for (const value of Object.values(VALUES)) expect(log).not.toContain(value);
  });
});

describe('An expired run in the audit trail', () => {
  it('records the expiry and one revocation with reason expired', async () => {
    const run = await cp.createRun('acme', 'anthropic', 1);
    const id = run.run!.id;
    const req = attachRequest({
      runId: id,
      credential: secretOf(run.bootstrapSecret),
      keys: agentKeys(),
    });
    const stream = new AttachStream(cp.agent, req);
    await stream.closed(5000);
    const actions = (await cp.auditOf('acme', id)).map((e) => [e.action, e.details]);
    expect(actions).toEqual([
      ['run.create', { provider: 'anthropic', ttl_seconds: '1' }],
      ['run.attach', {}],
      [
        'run.deliver',
        expect.objectContaining({ names: 'ANTHROPIC_API_KEY,DB_PASSWORD,SERVICE_URL' }),
      ],
      ['run.expire', {}],
      ['run.revoke', { reason: 'expired' }],
    ]);
  });
});
