import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  makeSandbox,
  parseDotenv,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// A sidecar agent keeps the .env current while the run goes on: changes made through the API or
// the CLI reach the file in well under a second.

const LIVE_MS = 1000;

let server: ServerProcess;
let cp: ControlPlane;
let sandbox: Sandbox;
let agent: AgentProcess;

/** The .env as the dotenv package reads it, or undefined while there is none. */
function dotenvNow(): Record<string, string> | undefined {
  const text = readIfExists(sandbox.envFile);
  return text === undefined ? undefined : parseDotenv(text).dotenv;
}

/** Waits for the .env to satisfy `ready`; returns how long that took from `since`. */
async function msUntil(ready: (env: Record<string, string>) => boolean, since: number) {
  await waitFor(() => ready(dotenvNow() ?? {}), 5000, 'the .env to change');
  return performance.now() - since;
}

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-live-0123456789' });
  await cp.setEnv('acme', 'FEATURE_FLAG', 'v1', false);
  await cp.setEnv('acme', 'DOOMED', 'doomed-value-0123');
  const run = await cp.createRun('acme', 'anthropic');
  sandbox = makeSandbox();
  agent = spawnAgent({ cwd: sandbox.dir, env: sandboxVariables(run, server.address) });
  await waitFor(() => dotenvNow()?.FEATURE_FLAG === 'v1', 10_000, 'the first .env');
});

afterAll(async () => {
  agent.signal('SIGTERM');
  await agent.exited;
  stopAgents();
  cp.close();
  await server.kill();
});

describe('Live update', () => {
  it('writes a variable changed through the API to the .env within 1 s', async () => {
    const start = performance.now();
    await cp.setEnv('acme', 'FEATURE_FLAG', 'v2', false);
    expect(await msUntil((env) => env.FEATURE_FLAG === 'v2', start)).toBeLessThan(LIVE_MS);
  });

  it('writes a variable added through the API to the .env within 1 s', async () => {
    const start = performance.now();
    await cp.setEnv('acme', 'ADDED_LATER', 'multi\nline "added" $later');
    const ms = await msUntil((env) => env.ADDED_LATER === 'multi\nline "added" $later', start);
    expect(ms).toBeLessThan(LIVE_MS);
  });

  it('writes a variable changed with runkeys env set within 1 s of the command', async () => {
    const res = await runCli(['env', 'set', 'FEATURE_FLAG', '--plain', '--collection', 'acme'], {
      env: cliEnv(server.address, server.rootToken),
      stdin: 'v3',
    });
    const start = performance.now();
    expect(res.code).toBe(0);
    expect(await msUntil((env) => env.FEATURE_FLAG === 'v3', start)).toBeLessThan(LIVE_MS);
  });

  it('removes a variable deleted with runkeys env delete from the .env', async () => {
    const res = await runCli(['env', 'delete', 'DOOMED', '--collection', 'acme'], {
      env: cliEnv(server.address, server.rootToken),
    });
    const start = performance.now();
    expect(res.code).toBe(0);
    expect(await msUntil((env) => !('DOOMED' in env), start)).toBeLessThan(LIVE_MS);
    expect(readIfExists(sandbox.envFile)).not.toContain('doomed-value-0123');
  });

  it('keeps the rest of the .env when one variable changes', () => {
    expect(dotenvNow()).toEqual({
      ANTHROPIC_API_KEY: 'sk-ant-live-0123456789',
      FEATURE_FLAG: 'v3',
      ADDED_LATER: 'multi\nline "added" $later',
    });
  });
});
