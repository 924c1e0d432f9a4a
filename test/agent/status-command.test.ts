import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeStatus } from '../../agent/status-command.js';
import type { AgentStatus } from '../../agent/status-file.js';
import { AGENT_FILE } from '../helpers/agent.js';
import { type CliResult, runCli } from '../helpers/cli.js';

// `runkeys agent status` reads a status file this test writes. The CLI cases run the built
// bin/runkeys.js (`npx tsc -p tsconfig.json` first); the one-file case dist/runkeys-agent.cjs.

const NOW = Date.parse('2030-01-01T12:00:00.000Z');
const iso = (msBeforeNow: number) => new Date(NOW - msBeforeNow).toISOString();

function status(over: Partial<AgentStatus> = {}): AgentStatus {
  return {
    runId: 'run_00000000000000ac',
    state: 'attached',
    pid: 4242,
    updateTime: iso(3_000),
    envFile: '/sandbox/env/.env',
    version: 3,
    versionTime: iso(312_000),
    lastContactTime: iso(4_000),
    offlineTime: null,
    maxOfflineSeconds: 3600,
    deadlineTime: null,
    offlineLeftSeconds: null,
    accounts: [
      { name: 'github', status: 'connected', expireTime: iso(-720_000), expired: false },
      { name: 'slack', status: 'refresh_failing', expireTime: iso(65_000), expired: true },
      { name: 'jira', status: 'connected', expireTime: null, expired: false },
    ],
    ...over,
  };
}

const offline = (over: Partial<AgentStatus> = {}) =>
  status({
    state: 'offline',
    lastContactTime: iso(62_000),
    offlineTime: iso(42_000),
    deadlineTime: iso(62_000 - 3_600_000),
    offlineLeftSeconds: 3538,
    ...over,
  });

describe('describeStatus()', () => {
  it('shows an attached agent: version and its age, last contact, accounts', () => {
    expect(describeStatus(status(), NOW)).toBe(
      [
        'attached: on a live stream to the control plane',
        'run run_00000000000000ac, version 3 received 5m12s ago',
        'last contact 4s ago, max offline 1h',
        'account github: connected, token expires in 12m',
        'account slack: refresh_failing, token expired 1m5s ago, removed',
        'account jira: connected, token without an expiry',
        'status written 3s ago by pid 4242',
        '',
      ].join('\n'),
    );
  });

  it('shows the time left while offline', () => {
    expect(
      describeStatus(offline({ accounts: [] }), NOW)
        .split('\n')
        .slice(0, 3),
    ).toEqual([
      'offline: control plane unreachable for 42s; serving the .env and credential files; ' +
        'they go in 58m58s',
      'run run_00000000000000ac, version 3 received 5m12s ago',
      'last contact 1m2s ago, max offline 1h',
    ]);
  });

  it.each([
    [
      'expired',
      { deadlineTime: iso(120_000) },
      'control plane unreachable past --max-offline; ' +
        'the .env and credential files were removed 2m ago',
    ],
    ['revoked', {}, 'the run ended; the .env and credential files were removed'],
    ['stopped', {}, 'the agent exited; the .env and credential files are as it left them'],
  ] as const)('says what %s means', (state, over, line) => {
    const text = describeStatus(status({ state, ...over }), NOW);
    expect(text.split('\n')[0]).toBe(`${state}: ${line}`);
  });
});

function statusFile(s: AgentStatus | string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'runkeys-status-'));
  mkdirSync(join(dir, 'env'));
  const file = join(dir, 'env', 'status.json');
  writeFileSync(file, typeof s === 'string' ? s : JSON.stringify(s), { mode: 0o600 });
  return { dir, file };
}

const summary = (r: CliResult) => ({
  code: r.code,
  first: r.stdout.split('\n')[0],
  stderr: r.stderr,
});

describe('runkeys agent status', () => {
  it.each([
    ['attached', 0],
    ['offline', 3],
    ['expired', 4],
    ['revoked', 4],
    ['stopped', 5],
  ] as const)('exits with the code of %s (%i)', async (state, code) => {
    const { file } = statusFile(status({ state, deadlineTime: iso(0) }));
    const res = await runCli(['agent', 'status', '--status-file', file]);
    expect(summary(res)).toMatchObject({ code, stderr: '' });
    expect(res.stdout).toMatch(new RegExp(`^${state}: `));
    expect(res.stdout).toContain('run run_00000000000000ac, version 3 received ');
  });

  it('prints the file as it is with --json', async () => {
    const text = `${JSON.stringify(offline(), null, 2)}\n`;
    const { file } = statusFile(text);
    const res = await runCli(['agent', 'status', '--json', '--status-file', file]);
    expect([res.code, res.stdout, res.stderr]).toEqual([3, text, '']);
  });

  it('reads env/status.json under the working directory by default', async () => {
    const { dir } = statusFile(status());
    const res = await runCli(['agent', 'status'], { cwd: dir });
    expect(summary(res)).toEqual({
      code: 0,
      first: 'attached: on a live stream to the control plane',
      stderr: '',
    });
  });

  it('exits 2 and says so when there is no status file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runkeys-status-'));
    const file = join(dir, 'status.json');
    const res = await runCli(['agent', 'status', '--status-file', file]);
    expect([res.code, res.stdout, res.stderr]).toEqual([
      2,
      '',
      `runkeys agent status: no status file at ${file}: is an agent running here? ` +
        '(see --status-file)\n',
    ]);
  });

  it('exits 2 on a file that is not a status file', async () => {
    const { file } = statusFile('{"state":"attached"}');
    const res = await runCli(['agent', 'status', '--status-file', file]);
    expect([res.code, res.stderr]).toEqual([
      2,
      `runkeys agent status: ${file} is not an agent status file\n`,
    ]);
  });

  it.skipIf(!existsSync(AGENT_FILE))('works in the one-file agent too', async () => {
    const { file } = statusFile(offline());
    const res = await new Promise<CliResult>((resolve) => {
      const child = spawn(process.execPath, [AGENT_FILE, 'status', '--status-file', file]);
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
      });
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr: '' }));
    });
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(/^offline: control plane unreachable for /);
  });
});
