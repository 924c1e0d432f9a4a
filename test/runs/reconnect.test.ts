import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  makeSandbox,
  parseDotenv,
  probe,
  readReport,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { call } from '../helpers/server.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// The control plane is killed (SIGKILL) and restarted on the same port and data dir while the
// run's command is going. The `it`s below read one story in order: each builds on the last.

let server: ServerProcess;
let cp: ControlPlane;
let sandbox: Sandbox;
let agent: AgentProcess;
let runId: string;
/** Lines the command had printed when the control plane was killed. */
let ticksAtKill = 0;

const ticksPrinted = () =>
  agent
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('tick ')).length;

const flagInDotenv = () => {
  const text = readIfExists(sandbox.envFile);
  return text === undefined ? undefined : parseDotenv(text).dotenv.FLAG;
};

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-reconnect-0123456789' });
  await cp.setEnv('acme', 'FLAG', 'before-restart');
  const run = await cp.createRun('acme', 'anthropic');
  runId = run.run!.id;
  sandbox = makeSandbox();
  agent = spawnAgent({
    cwd: sandbox.dir,
    env: sandboxVariables(run, server.address),
    command: probe(sandbox, 'wait'),
  });
  await waitFor(() => flagInDotenv() === 'before-restart', 10_000, 'the first .env');
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

describe('Reconnect after the control plane restarts', () => {
  it('resumes on the restarted server (audit run.resume)', async () => {
    await waitFor(() => ticksPrinted() > 0, 5_000, 'the command to print');
    ticksAtKill = ticksPrinted();
    await server.kill('SIGKILL');
    cp.close();
    server = await spawnServer({
      dataDir: server.dataDir,
      listen: server.address,
      rootToken: server.rootToken,
    });
    cp = controlPlane(server.address, server.rootToken);
    const resumed = await waitFor(
      async () => (await cp.auditOf('acme', runId)).some((e) => e.action === 'run.resume'),
      15_000,
      'the agent to resume',
    );
    expect(resumed).toBe(true);
  });

  it('shows the resume in runkeys audit --action run.resume', async () => {
    const res = await runCli(
      ['audit', '--collection', 'acme', '--action', 'run.resume', '--json'],
      { env: cliEnv(server.address, server.rootToken) },
    );
    expect(res.code).toBe(0);
    const events = JSON.parse(res.stdout) as { action: string; target: string }[];
    expect(events.map((e) => [e.action, e.target])).toEqual([['run.resume', runId]]);
  });

  it('writes a change made after the restart to the .env', async () => {
    await cp.setEnv('acme', 'FLAG', 'after-restart');
    await waitFor(() => flagInDotenv() === 'after-restart', 5000, 'the change in the .env');
  });

  it('lets the command finish with exit code 0, as if nothing happened', async () => {
    // The command goes on printing after the restart before it is told to finish.
    const atResume = ticksPrinted();
    await waitFor(() => ticksPrinted() > atResume + 1, 5_000, 'more output after the resume');
    writeFileSync(sandbox.go, '');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });

  it('has receipts for the bundle before the restart and the update after it', async () => {
    const res = await call(
      cp.runs.listReceipts.bind(cp.runs),
      {
        collection: 'acme',
        runId,
        name: 'FLAG',
        fingerprint: '',
        version: 0,
        pageSize: 0,
        pageToken: '',
      },
      cp.token,
    );
    const fps = (await cp.auditOf('acme', 'FLAG')).map((e) => e.fingerprint);
    // Newest first: the update after the restart, then the first bundle (which started the
    // command).
    expect(res.receipts.map((r) => [r.fingerprint, r.commandStarted])).toEqual([
      [fps.at(-1), false],
      [fps.at(-2), true],
    ]);
    expect(res.receipts[0]!.version).toBeGreaterThan(res.receipts[1]!.version);
  });

  it("passes the command's output through whole: every tick in order, then done", () => {
    const lines = agent.stdout().trimEnd().split('\n');
    expect(lines.at(-1)).toBe('done');
    const ticks = lines.slice(0, -1);
    // Lines from before the kill and from after the resume, none lost or doubled.
    expect(ticksAtKill).toBeGreaterThan(0);
    expect(ticks.length).toBeGreaterThan(ticksAtKill + 1);
    expect(ticks).toEqual(ticks.map((_, i) => `tick ${i + 1}`));
  });

  it('leaves the command its first environment and gives it the new .env', () => {
    const report = readReport(sandbox);
    expect(report.env.FLAG).toBe('before-restart');
    expect(parseDotenv(report.dotenv!).dotenv.FLAG).toBe('after-restart');
  });
});

describe('Resume after the run ended while the agent was away', () => {
  it('is refused: the agent removes the .env and exits 0', async () => {
    await cp.setEnv('acme', 'FLAG', 'sidecar');
    const run = await cp.createRun('acme', 'anthropic');
    const away = makeSandbox();
    const sidecar = spawnAgent({ cwd: away.dir, env: sandboxVariables(run, server.address) });
    await waitFor(() => readIfExists(away.envFile)?.includes('sidecar'), 10_000, 'the .env');
    // Frozen, the agent sees neither the restart nor the end until it thaws and resumes.
    sidecar.signal('SIGSTOP');
    await server.kill('SIGKILL');
    cp.close();
    server = await spawnServer({
      dataDir: server.dataDir,
      listen: server.address,
      rootToken: server.rootToken,
    });
    cp = controlPlane(server.address, server.rootToken);
    await cp.endRun('acme', run.run!.id);
    sidecar.signal('SIGCONT');
    expect(await sidecar.exited).toEqual({ code: 0, signal: null });
    expect(readIfExists(away.envFile)).toBeUndefined();
    const actions = (await cp.auditOf('acme', run.run!.id)).map((e) => e.action);
    expect(actions).not.toContain('run.resume');
  });
});
