import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfig } from '../../agent/config.js';
import type { OutputStage } from '../../agent/output.js';
import { runAgent } from '../../agent/run.js';
import type { AgentStatus } from '../../agent/status-file.js';
import { CollectionServiceService as Collections } from '../../proto/gen/runkeys/v1/collections.js';
import { captureLog } from '../agent/log-capture.js';
import { Rpc } from '../helpers/rpc.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// A collection's max offline reaches its agents through a real control plane: the limit an agent
// enforces, and its status file shows, follows the collection, within an --max-offline the agent
// was given. The shortest collection limit is a minute, so the outage is checked by its deadline
// rather than waited out.

/** Exits once its argument, a path, exists: the agents run it in exec mode to be stopped. */
const WAIT_FOR_FILE =
  'const fs = require("node:fs");' +
  'const t = setInterval(() => { if (fs.existsSync(process.argv[1])) clearInterval(t); }, 50);';

let srv: TestServer;
let rpc: Rpc;
let cp: ControlPlane;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
  cp = controlPlane(srv.address, srv.rootToken);
  await rpc.call(
    Collections.createCollection,
    { name: 'acme', maxOfflineSeconds: 120 },
    srv.rootToken,
  );
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-max-offline-0123456789' });
});

afterAll(async () => {
  await Promise.all(stops.map((stop) => stop()));
  cp.close();
  rpc.close();
  await srv.close();
});

const setLimit = (maxOfflineSeconds: number) =>
  rpc.call(Collections.updateCollection, { name: 'acme', maxOfflineSeconds }, srv.rootToken);

/** Starts an agent (from source, in this process) on a new run of acme. */
async function startAgent(env: Record<string, string> = {}) {
  const run = await cp.createRun('acme', 'anthropic');
  const dir = mkdtempSync(join(tmpdir(), 'runkeys-max-offline-'));
  const done = join(dir, 'done');
  const config = agentConfig(
    {},
    [process.execPath, '-e', WAIT_FOR_FILE, done],
    { ...sandboxVariables(run, srv.address), ...env },
    dir,
    dir,
  );
  const stage: OutputStage = { stream: () => new PassThrough(), update() {} };
  const io = {
    env: {},
    stdin: process.stdin,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
  };
  const exited = runAgent(config, stage, io, captureLog().log);
  stops.push(async () => {
    writeFileSync(done, '');
    await exited;
  });
  const status = () => {
    const text = readIfExists(config.statusFile);
    return text === undefined ? undefined : (JSON.parse(text) as AgentStatus);
  };
  const shows = (state: AgentStatus['state'], seconds: number) =>
    waitFor(
      () => {
        const s = status();
        return s?.state === state && s.maxOfflineSeconds === seconds ? s : undefined;
      },
      10_000,
      `${state} with a limit of ${seconds} s`,
    );
  return { shows };
}

describe("A collection's max offline", () => {
  it('replaces the default of an agent given no --max-offline, and follows updates', async () => {
    const agent = await startAgent();
    const first = await agent.shows('attached', 120);

    await setLimit(60);
    const lowered = await agent.shows('attached', 60);
    expect(lowered.version).toBeGreaterThan(first.version);

    await setLimit(0);
    await agent.shows('attached', 3600);
    await setLimit(120);
    await agent.shows('attached', 120);
  });

  it('cannot raise an --max-offline the agent was given, only lower it', async () => {
    const agent = await startAgent({ RUNKEYS_MAX_OFFLINE: '90s' });
    await agent.shows('attached', 90);

    await setLimit(60);
    await agent.shows('attached', 60);
    await setLimit(0);
    await agent.shows('attached', 90);
  });

  it('sets the deadline of an outage: the last contact plus the collection limit', async () => {
    await setLimit(60);
    const agent = await startAgent();
    await agent.shows('attached', 60);

    await srv.close();
    const offline = await agent.shows('offline', 60);
    const deadline = Date.parse(offline.deadlineTime ?? '');
    expect(deadline - Date.parse(offline.lastContactTime)).toBe(60_000);
    expect(offline.offlineLeftSeconds).toBeGreaterThan(40);
    expect(offline.offlineLeftSeconds).toBeLessThanOrEqual(60);
  });
});
