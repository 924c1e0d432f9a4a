import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStatusFile, StatusFile, statusOf } from '../../agent/status-file.js';
import { Layer } from '../../proto/gen/runkeys/v1/runs.js';
import { captureLog, WARN } from './log-capture.js';

const NOW = Date.parse('2030-01-01T12:00:00.000Z');
const TOKEN = 'gho_statustoken0123456789abcdef';

const input = (state: 'attached' | 'offline') => ({
  runId: 'run_00000000000000ad',
  envFile: '/sandbox/env/.env',
  outage: {
    state,
    maxOfflineMs: 60_000,
    lastContact: NOW - 20_000,
    offlineSince: state === 'offline' ? NOW - 10_000 : undefined,
    deadline: state === 'offline' ? NOW + 40_000 : undefined,
  },
  held: {
    receivedAt: NOW - 90_000,
    bundle: {
      version: 7,
      entries: [
        {
          name: 'GH_TOKEN',
          value: TOKEN,
          layer: Layer.LAYER_ACCOUNT,
          sensitive: true,
          fingerprint: '',
        },
      ],
      files: [],
      unset: [],
      conflicts: [],
      resumeCredential: '',
      accounts: [{ name: 'github', status: 'connected', expireTime: new Date(NOW - 1) }],
      maxOfflineSeconds: 0,
      digest: '',
    },
  },
});

describe('statusOf()', () => {
  it('gives the version held, its age, the deadline and time left, never a value', () => {
    const s = statusOf(input('offline'), NOW);
    expect(s).toEqual({
      runId: 'run_00000000000000ad',
      state: 'offline',
      pid: process.pid,
      updateTime: '2030-01-01T12:00:00.000Z',
      envFile: '/sandbox/env/.env',
      version: 7,
      versionTime: '2030-01-01T11:58:30.000Z',
      lastContactTime: '2030-01-01T11:59:40.000Z',
      offlineTime: '2030-01-01T11:59:50.000Z',
      maxOfflineSeconds: 60,
      deadlineTime: '2030-01-01T12:00:40.000Z',
      offlineLeftSeconds: 40,
      accounts: [
        {
          name: 'github',
          status: 'connected',
          expireTime: '2030-01-01T11:59:59.999Z',
          expired: true,
        },
      ],
    });
    expect(JSON.stringify(s)).not.toContain(TOKEN);
  });

  it('has no deadline while attached', () => {
    expect(statusOf(input('attached'), NOW)).toMatchObject({
      offlineTime: null,
      deadlineTime: null,
      offlineLeftSeconds: null,
    });
  });
});

describe('StatusFile', () => {
  it('writes a 0600 file that readStatusFile() reads back', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'runkeys-status-')), 'new', 'status.json');
    const s = statusOf(input('attached'), NOW);
    new StatusFile(path, captureLog().log).write(s);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readStatusFile(path)?.status).toEqual(s);
  });

  it('logs a failed write once, by path, and goes on', () => {
    // A directory where the file should be: the rename fails.
    const dir = join(mkdtempSync(join(tmpdir(), 'runkeys-status-')), 'status.json');
    mkdirSync(dir);
    const { log, lines } = captureLog();
    const file = new StatusFile(dir, log);
    file.write(statusOf(input('attached'), NOW));
    file.write(statusOf(input('attached'), NOW));
    expect(lines).toEqual([
      expect.objectContaining({ level: WARN, msg: 'status file not written', statusFile: dir }),
    ]);
  });
});
