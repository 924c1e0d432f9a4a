import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentEntry,
  makeSandbox,
  messages,
  probe,
  readReport,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { AttachStream, agentKeys, attachRequest, secretOf } from '../helpers/attach.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// How the agent ends when it cannot start a run: an exit code a script can branch on and one line
// a person can act on.

const USED_SECRET =
  'runkeys agent: the control plane refused the bootstrap secret (wrong, already used or ' +
  'expired): check RUNKEYS_RUN_ID and RUNKEYS_BOOTSTRAP_SECRET, or create a new run';

let srv: TestServer;
let cp: ControlPlane;

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-exit-0123456789' });
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await srv.close();
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const probeServer = createServer();
  await new Promise<void>((resolve) => probeServer.listen(0, '127.0.0.1', resolve));
  const { port } = probeServer.address() as { port: number };
  await new Promise((resolve) => probeServer.close(resolve));
  return port;
}

async function usedRun() {
  const run = await cp.createRun('acme', 'anthropic');
  const req = attachRequest({
    runId: run.run!.id,
    credential: secretOf(run.bootstrapSecret),
    keys: agentKeys(),
  });
  const stream = new AttachStream(cp.agent, req);
  await stream.next();
  stream.cancel();
  return run;
}

describe('Agent exit codes', () => {
  for (const entry of ['one-file', 'cli'] as AgentEntry[]) {
    it(`exits 77 with one line when the bootstrap secret was already used (${entry})`, async () => {
      const run = await usedRun();
      const sandbox = makeSandbox();
      const agent = spawnAgent({
        entry,
        cwd: sandbox.dir,
        env: sandboxVariables(run, srv.address),
        command: probe(sandbox, 'exit:0'),
      });
      expect(await agent.exited).toEqual({ code: 77, signal: null });
      expect(messages(agent.stderr())).toEqual([USED_SECRET]);
      expect(existsSync(sandbox.report)).toBe(false);
    });
  }

  it('exits 69 with one line when the control plane is unreachable after --wait 1', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const addr = `127.0.0.1:${await closedPort()}`;
    const sandbox = makeSandbox();
    const start = Date.now();
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: sandboxVariables(run, addr),
      flags: ['--wait', '1'],
      command: probe(sandbox, 'exit:0'),
    });
    expect(await agent.exited).toEqual({ code: 69, signal: null });
    // Regression: a backoff drawn near the end of --wait ran past it (--wait 1 took up to 4 s).
    expect(Date.now() - start).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - start).toBeLessThan(3000);
    expect(messages(agent.stderr())).toEqual([
      `runkeys agent: control plane unreachable at ${addr} after --wait: ` +
        'check RUNKEYS_ADDR and that the server is up',
    ]);
    // It never had a stream, so none was lost.
    expect(agent.stderr()).toContain('control plane not reached yet; retrying');
    expect(agent.stderr()).not.toContain('stream lost');
  });

  it('exits 77 and writes no .env when the bundle is not sealed by the pinned key', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const wrongKey = Buffer.from(nacl.box.keyPair().publicKey).toString('base64');
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: { ...sandboxVariables(run, srv.address), RUNKEYS_SERVER_KEY: wrongKey },
      command: probe(sandbox, 'exit:0'),
    });
    expect(await agent.exited).toEqual({ code: 77, signal: null });
    expect(messages(agent.stderr())).toEqual([
      'runkeys agent: bundle could not be opened: check RUNKEYS_SERVER_KEY',
    ]);
    expect(existsSync(sandbox.envFile)).toBe(false);
    expect(existsSync(sandbox.report)).toBe(false);
  });

  it('exits 64 with one line when RUNKEYS_ADDR is missing', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const { RUNKEYS_ADDR: _, ...rest } = sandboxVariables(run, srv.address);
    const agent = spawnAgent({ cwd: makeSandbox().dir, env: rest });
    expect(await agent.exited).toEqual({ code: 64, signal: null });
    expect(messages(agent.stderr())).toEqual([
      'runkeys agent: set RUNKEYS_ADDR (or --addr) to the control plane address',
    ]);
  });
});

describe('runkeys agent flags', () => {
  // Regression: the root program took --addr for itself, so `runkeys agent --addr` said
  // "set RUNKEYS_ADDR (or --addr)" and exited 64.
  it('takes --addr, --run-id, --server-key and --bootstrap-secret-file instead of RUNKEYS_*', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const secretFile = join(sandbox.dir, 'secret');
    writeFileSync(secretFile, `${run.bootstrapSecret}\n`, { mode: 0o600 });
    const agent = spawnAgent({
      entry: 'cli',
      cwd: sandbox.dir,
      env: {},
      flags: [
        '--addr',
        srv.address,
        '--run-id',
        run.run!.id,
        '--server-key',
        run.serverPublicKey,
        '--bootstrap-secret-file',
        secretFile,
      ],
      command: probe(sandbox, 'exit:0'),
    });
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(readReport(sandbox).env.ANTHROPIC_API_KEY).toBe('sk-ant-exit-0123456789');
  });
});
