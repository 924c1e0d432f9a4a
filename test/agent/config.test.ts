import { describe, expect, it } from 'vitest';
import { AgentConfigError, agentConfig } from '../../agent/config.js';
import { formatDuration, parseDuration } from '../../agent/duration.js';
import { newKeyPair } from '../../common/sealing.js';
import { newCredential } from '../../server/crypto/native.js';

const ENV = {
  RUNKEYS_ADDR: '127.0.0.1:7443',
  RUNKEYS_RUN_ID: 'run_00000000000000aa',
  RUNKEYS_BOOTSTRAP_SECRET: newCredential().credential.toString('base64url'),
  RUNKEYS_SERVER_KEY: Buffer.from(newKeyPair().publicKey).toString('base64'),
};

describe('parseDuration()', () => {
  it.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2m5s', 125_000],
    ['0', 0],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '1.5h', '-1', '1d', '30m1h', 'h', '1 h', '99999999999999999999'])(
    'refuses %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatDuration()', () => {
  it('writes hours, minutes and seconds, rounding down', () => {
    expect([3_725_999, 900_000, 999, -5].map(formatDuration)).toEqual([
      '1h2m5s',
      '15m',
      '0s',
      '0s',
    ]);
  });
});

describe('agentConfig() --max-offline and --status-file', () => {
  const config = (flags: Record<string, string>, env: Record<string, string> = {}) =>
    agentConfig(flags, [], { ...ENV, ...env }, '/sandbox');

  it('defaults to one hour, and to status.json beside the .env', () => {
    expect(config({})).toMatchObject({
      maxOfflineMs: 3_600_000,
      maxOfflineExplicit: false,
      statusFile: '/sandbox/env/status.json',
    });
    expect(config({ envFile: 'x/y.env' }).statusFile).toBe('/sandbox/x/status.json');
    expect(config({ statusFile: 'run/s.json' }).statusFile).toBe('/sandbox/run/s.json');
  });

  it('takes RUNKEYS_MAX_OFFLINE, and the flag over it', () => {
    expect(config({}, { RUNKEYS_MAX_OFFLINE: '15m' }).maxOfflineMs).toBe(900_000);
    expect(config({ maxOffline: '90s' }, { RUNKEYS_MAX_OFFLINE: '15m' }).maxOfflineMs).toBe(90_000);
  });

  it('records that either gave it, even at the default, so no collection raises it', () => {
    expect(config({}, { RUNKEYS_MAX_OFFLINE: '1h' }).maxOfflineExplicit).toBe(true);
    expect(config({ maxOffline: '3600' }).maxOfflineExplicit).toBe(true);
  });

  it.each(['0', '0s', 'soon', '1.5'])('refuses --max-offline %s', (value) => {
    expect(() => config({ maxOffline: value })).toThrow(
      new AgentConfigError(
        '--max-offline must be a duration of at least 1s, such as 90s, 15m, 1h or 3600; ' +
          `got ${value}`,
      ),
    );
  });
});

describe('agentConfig() settings missing or malformed', () => {
  const config = (env: Record<string, string | undefined>, flags: Record<string, string> = {}) =>
    agentConfig(flags, [], { ...ENV, ...env }, '/sandbox');

  it.each([
    [
      { RUNKEYS_RUN_ID: undefined },
      'set RUNKEYS_RUN_ID (or --run-id) to the id runs create printed',
    ],
    [
      { RUNKEYS_RUN_ID: 'run_123' },
      'RUNKEYS_RUN_ID is not a run id (run_ and 16 hex digits): copy it again from what runs ' +
        'create printed',
    ],
    [
      { RUNKEYS_BOOTSTRAP_SECRET: '' },
      'set RUNKEYS_BOOTSTRAP_SECRET (or --bootstrap-secret-file) to the secret runs create printed',
    ],
    [
      { RUNKEYS_BOOTSTRAP_SECRET: 'truncated-secret-CANARY' },
      'RUNKEYS_BOOTSTRAP_SECRET is not a bootstrap secret (43 base64url characters): copy it ' +
        'again from what runs create printed',
    ],
    [
      { RUNKEYS_SERVER_KEY: undefined },
      'set RUNKEYS_SERVER_KEY (or --server-key) to the control plane key runs create printed',
    ],
    [
      { RUNKEYS_SERVER_KEY: 'AAAA' },
      'RUNKEYS_SERVER_KEY is not a control plane key (44 base64 characters): copy it again from ' +
        'what runs create printed',
    ],
  ])('says what is wrong with %j, never the value', (env, message) => {
    expect(() => config(env)).toThrow(new AgentConfigError(message));
  });

  it('names the flag when the value came from one', () => {
    expect(() => config({}, { serverKey: 'AAAA' })).toThrow(/^--server-key is not a control/);
    expect(() => config({}, { runId: 'x' })).toThrow(/^--run-id is not a run id/);
  });
});
