import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import type { OutputStage } from '../../agent/output.js';
import { type AgentIo, runAgent } from '../../agent/run.js';
import type { AgentStatus } from '../../agent/status-file.js';
import { Bundle, Layer } from '../../proto/gen/runkeys/v1/runs.js';
import { readIfExists, waitFor } from '../helpers/wait.js';
import { captureLog, WARN } from './log-capture.js';
import { configFor, type StandIn, standIn } from './stand-in.js';

// runAgent against a stand-in control plane that goes away and comes back on the same port:
// the outage policy (--max-offline), token expiry, and the status file.

const RUN_ID = 'run_00000000000000ab';
const TOKEN = 'gho_outagetoken0123456789abcdef';
const FRESH = 'gho_freshtoken0123456789abcdef';
const HOUR = 3_600_000;

let cp: StandIn | undefined;
let stopAgent: () => Promise<void> = async () => {};

afterEach(async () => {
  await stopAgent();
  cp?.stop();
});

function sandbox() {
  const root = mkdtempSync(join(tmpdir(), 'runkeys-outage-'));
  const dirs = { home: join(root, 'home'), work: join(root, 'work') };
  mkdirSync(dirs.home);
  mkdirSync(dirs.work);
  return { ...dirs, file: join(dirs.home, '.config', 'gh', 'hosts.json') };
}

function bundle(version: number, token: string, expireTime: Date, maxOfflineSeconds = 0): Bundle {
  return Bundle.fromPartial({
    version,
    entries: [
      { name: 'GH_TOKEN', value: token, layer: Layer.LAYER_ACCOUNT, sensitive: true, expireTime },
      { name: 'REGION', value: 'eu-west-1', layer: Layer.LAYER_ENV, sensitive: false },
    ],
    files: [
      {
        path: '~/.config/gh/hosts.json',
        content: `{"oauth_token":"${token}"}`,
        sensitive: true,
        account: 'github',
        secrets: [token],
      },
    ],
    unset: [],
    conflicts: [],
    resumeCredential: '',
    accounts: [{ name: 'github', status: 'connected', expireTime }],
    maxOfflineSeconds,
  });
}

function start(config: AgentConfig) {
  const stage: OutputStage = { stream: () => new PassThrough(), update() {} };
  const io: AgentIo = {
    env: {},
    stdin: process.stdin,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
  };
  const captured = captureLog();
  const exited = runAgent(config, stage, io, captured.log);
  stopAgent = async () => {
    cp?.revoke();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
  };
  const status = () => {
    const text = readIfExists(config.statusFile);
    return text === undefined ? undefined : (JSON.parse(text) as AgentStatus);
  };
  const inState = (state: AgentStatus['state'], timeoutMs = 10_000) =>
    waitFor(() => (status()?.state === state ? status() : undefined), timeoutMs, `state ${state}`);
  return { ...captured, exited, status, inState };
}

describe('runAgent() while the control plane is unreachable', () => {
  it('removes the .env and files past --max-offline, and writes them again on resume', async () => {
    const box = sandbox();
    const plane = await standIn({
      runId: RUN_ID,
      bundle: bundle(1, TOKEN, new Date(Date.now() + HOUR)),
      heartbeatMs: 100,
    });
    cp = plane;
    const config = configFor(plane, RUN_ID, box, { maxOfflineMs: 1000 });
    const agent = start(config);

    const attached = await agent.inState('attached');
    expect(readFileSync(config.envFile, 'utf8')).toContain(TOKEN);
    expect(readFileSync(box.file, 'utf8')).toContain(TOKEN);
    expect(attached).toMatchObject({
      runId: RUN_ID,
      version: 1,
      offlineTime: null,
      deadlineTime: null,
      offlineLeftSeconds: null,
      maxOfflineSeconds: 1,
      envFile: config.envFile,
    });
    expect(statSync(config.statusFile).mode & 0o777).toBe(0o600);
    // Sealed heartbeats are contact: the status moves with them.
    await waitFor(
      () => (agent.status()?.lastContactTime ?? '') > attached.lastContactTime,
      5000,
      'a heartbeat to be counted',
    );

    plane.stop();
    const stoppedAt = Date.now();
    const offline = await agent.inState('offline');
    expect(readFileSync(config.envFile, 'utf8')).toContain(TOKEN);
    expect(offline.offlineLeftSeconds).toBeLessThanOrEqual(1);
    expect(Date.parse(offline.deadlineTime ?? '')).toBe(Date.parse(offline.lastContactTime) + 1000);

    const expired = await agent.inState('expired');
    expect(Date.now() - stoppedAt).toBeGreaterThan(700);
    expect(existsSync(config.envFile)).toBe(false);
    expect(existsSync(box.file)).toBe(false);
    expect(expired.offlineLeftSeconds).toBe(0);
    const removal = agent.lines.find((l) => l.msg.includes('past --max-offline'));
    expect(removal).toMatchObject({
      level: WARN,
      envFile: config.envFile,
      files: ['~/.config/gh/hosts.json'],
    });

    await plane.start();
    await agent.inState('attached', 20_000);
    expect(readFileSync(config.envFile, 'utf8')).toContain(TOKEN);
    expect(readFileSync(box.file, 'utf8')).toContain(TOKEN);
    expect(plane.attaches.length).toBeGreaterThan(1);
    const resume = plane.attaches.at(-1);
    expect([resume?.bootstrapProof.length, resume?.resumeProof.length !== 0]).toEqual([0, true]);
    expect(agent.text()).not.toContain(TOKEN);
  });

  it('rewrites the .env without an expired token and removes its file; a fresh one restores them', async () => {
    const box = sandbox();
    const plane = await standIn({
      runId: RUN_ID,
      bundle: bundle(1, TOKEN, new Date(Date.now() + 1000)),
    });
    cp = plane;
    const config = configFor(plane, RUN_ID, box);
    const agent = start(config);
    await agent.inState('attached');
    expect(readFileSync(config.envFile, 'utf8')).toContain(TOKEN);

    const lapsed = await waitFor(
      () => agent.lines.find((l) => l.msg === 'tokens past their expiry removed'),
      5000,
      'the token to expire',
    );
    expect(lapsed).toMatchObject({ level: WARN, variables: ['GH_TOKEN'], accounts: ['github'] });
    const env = readFileSync(config.envFile, 'utf8');
    expect(env).not.toContain('GH_TOKEN');
    expect(env).toContain("REGION='eu-west-1'");
    expect(existsSync(box.file)).toBe(false);
    await waitFor(() => agent.status()?.accounts[0]?.expired, 5000, 'the status to show it');
    expect(agent.status()?.state).toBe('attached');

    plane.update(bundle(2, FRESH, new Date(Date.now() + HOUR)));
    await waitFor(() => readIfExists(box.file)?.includes(FRESH), 5000, 'the fresh token file');
    expect(readFileSync(config.envFile, 'utf8')).toContain(FRESH);
    expect(agent.status()?.accounts).toEqual([
      expect.objectContaining({ name: 'github', status: 'connected', expired: false }),
    ]);
    expect(agent.lines.filter((l) => l.msg === 'tokens past their expiry removed')).toHaveLength(1);
    expect(agent.text()).not.toContain(TOKEN);
  });

  it('says revoked in the status file when the run ends', async () => {
    const box = sandbox();
    const plane = await standIn({
      runId: RUN_ID,
      bundle: bundle(1, TOKEN, new Date(Date.now() + HOUR)),
    });
    cp = plane;
    const config = configFor(plane, RUN_ID, box);
    const agent = start(config);
    await agent.inState('attached');

    plane.revoke();
    expect(await agent.exited).toBe(0);
    expect(agent.status()?.state).toBe('revoked');
    expect(existsSync(config.envFile)).toBe(false);
  });
});

describe('runAgent() and the outage limit a bundle carries', () => {
  it('replaces the default, follows updates, and sets the deadline', async () => {
    const box = sandbox();
    const later = new Date(Date.now() + HOUR);
    const plane = await standIn({ runId: RUN_ID, bundle: bundle(1, TOKEN, later, 7200) });
    cp = plane;
    const config = configFor(plane, RUN_ID, box);
    const agent = start(config);
    expect((await agent.inState('attached')).maxOfflineSeconds).toBe(7200);

    plane.update(bundle(2, TOKEN, later, 1));
    await waitFor(() => agent.status()?.maxOfflineSeconds === 1, 5000, 'the new limit');
    plane.stop();
    const offline = await agent.inState('offline');
    expect(Date.parse(offline.deadlineTime ?? '')).toBe(Date.parse(offline.lastContactTime) + 1000);
    await agent.inState('expired');
    expect(existsSync(config.envFile)).toBe(false);

    await plane.start();
    await agent.inState('attached', 20_000);
  });

  it('never raises an --max-offline given explicitly', async () => {
    const box = sandbox();
    const later = new Date(Date.now() + HOUR);
    const plane = await standIn({ runId: RUN_ID, bundle: bundle(1, TOKEN, later, 3600) });
    cp = plane;
    const config = configFor(plane, RUN_ID, box, { maxOfflineMs: 2000, maxOfflineExplicit: true });
    const agent = start(config);
    expect((await agent.inState('attached')).maxOfflineSeconds).toBe(2);

    plane.update(bundle(2, TOKEN, later, 1));
    await waitFor(() => agent.status()?.maxOfflineSeconds === 1, 5000, 'the shorter limit');
    plane.update(bundle(3, TOKEN, later, 0));
    await waitFor(() => agent.status()?.version === 3, 5000, 'version 3');
    expect(agent.status()?.maxOfflineSeconds).toBe(2);
  });
});

describe('runAgent() and forged heartbeats', () => {
  // Regression: unsealed heartbeats counted as contact, so a man in the middle could keep an
  // agent serving past --max-offline while dropping its revocation.
  it.each(['foreign-key', 'garbage'] as const)(
    'neither counts a %s heartbeat as contact nor moves the deadline',
    async (forgery) => {
      const box = sandbox();
      const plane = await standIn({
        runId: RUN_ID,
        bundle: bundle(1, TOKEN, new Date(Date.now() + HOUR)),
        heartbeatMs: 50,
      });
      cp = plane;
      const config = configFor(plane, RUN_ID, box, {
        maxOfflineMs: 1000,
        maxOfflineExplicit: true,
      });
      const agent = start(config);
      await agent.inState('attached');

      plane.intercept(forgery);
      const offline = await agent.inState('offline');
      const expired = await agent.inState('expired');
      expect(expired.lastContactTime).toBe(offline.lastContactTime);
      expect(Date.parse(expired.deadlineTime ?? '')).toBe(
        Date.parse(offline.lastContactTime) + 1000,
      );
      expect(existsSync(config.envFile)).toBe(false);
      expect(existsSync(box.file)).toBe(false);
      // The forged streams were taken and dropped: the agent kept trying.
      expect(plane.attaches.length).toBeGreaterThan(1);
      expect(agent.lines.map((l) => l.msg)).toContain(
        'bundle could not be opened; dropping the stream',
      );
    },
  );
});
