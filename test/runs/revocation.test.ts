import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunState } from '../../proto/gen/runkeys/v1/runs.js';
import {
  makeSandbox,
  probe,
  readReport,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

// Ending a run, by `runkeys runs end` or by its TTL, revokes what the agent holds.

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-revoke-0123456789' });
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

const cli = (args: string[]) => runCli(args, { env: cliEnv(server.address, server.rootToken) });

/** Creates a run and starts an agent for it, waiting until its .env is written. */
async function attachedAgent(options: { flags?: string[]; command?: (s: Sandbox) => string[] }) {
  const run = await cp.createRun('acme', 'anthropic');
  const sandbox = makeSandbox();
  const agent = spawnAgent({
    cwd: sandbox.dir,
    env: sandboxVariables(run, server.address),
    flags: options.flags,
    command: options.command?.(sandbox),
  });
  await waitForFile(sandbox.envFile, 10_000);
  return { runId: run.run!.id, sandbox, agent };
}

const endRun = async (runId: string) => {
  const res = await cli(['runs', 'end', runId, '--collection', 'acme']);
  expect(res.code).toBe(0);
};

describe('runkeys runs end', () => {
  it('removes the .env in sidecar mode, and the agent exits 0', async () => {
    const { runId, sandbox, agent } = await attachedAgent({});
    await endRun(runId);
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(sandbox.envFile)).toBe(false);
  });

  it('removes the .env in exec mode and leaves the command running by default', async () => {
    const { runId, sandbox, agent } = await attachedAgent({ command: (s) => probe(s, 'wait') });
    await endRun(runId);
    await waitFor(() => !existsSync(sandbox.envFile), 5000, 'the .env to be removed');
    // The command is still going: it has not reported and still prints.
    const ticks = agent.stdout().length;
    await waitFor(() => agent.stdout().length > ticks, 5000, 'the command to print again');
    expect(existsSync(sandbox.report)).toBe(false);
    writeFileSync(sandbox.go, '');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(readReport(sandbox).dotenv).toBeNull();
  });

  it('terminates the command with --on-revoke=terminate, and exits 143', async () => {
    const { runId, sandbox, agent } = await attachedAgent({
      flags: ['--on-revoke=terminate'],
      command: (s) => probe(s, 'wait'),
    });
    await endRun(runId);
    expect(await agent.exited).toEqual({ code: 143, signal: null });
    expect(existsSync(sandbox.envFile)).toBe(false);
    expect(existsSync(sandbox.report)).toBe(false);
  });

  it('reports the run ended', async () => {
    const { runId, agent } = await attachedAgent({});
    await endRun(runId);
    await agent.exited;
    const run = await cp.getRun('acme', runId);
    expect([run.state, run.endReason]).toEqual([RunState.RUN_STATE_ENDED, 'ended']);
  });
});

describe('Run TTL', () => {
  it('revokes a run created with --ttl 2 once it runs out: .env removed, agent exits 0', async () => {
    const created = await cli([
      'runs',
      'create',
      '--collection',
      'acme',
      '--provider',
      'anthropic',
      '--ttl',
      '2',
      '--json',
    ]);
    expect(created.code).toBe(0);
    const vars = JSON.parse(created.stdout) as Record<string, string>;
    const sandbox = makeSandbox();
    const start = Date.now();
    const agent = spawnAgent({ cwd: sandbox.dir, env: vars });
    await waitForFile(sandbox.envFile, 10_000);
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500);
    expect(existsSync(sandbox.envFile)).toBe(false);
    const run = await cp.getRun('acme', vars.RUNKEYS_RUN_ID!);
    expect([run.state, run.endReason]).toEqual([RunState.RUN_STATE_EXPIRED, 'expired']);
  });
});
