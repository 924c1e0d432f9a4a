import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutageClock, TICK_MS } from '../../agent/outage.js';
import { captureLog, WARN } from './log-capture.js';

const MAX_OFFLINE = 60_000;

function clock() {
  const calls = { withdraw: 0, restore: 0, changed: 0 };
  const { log, lines } = captureLog();
  const c = new OutageClock({
    maxOfflineMs: MAX_OFFLINE,
    envFile: '/sandbox/env/.env',
    withdraw: () => {
      calls.withdraw++;
      return ['~/.config/gh/hosts.json'];
    },
    restore: () => {
      calls.restore++;
    },
    changed: () => {
      calls.changed++;
    },
    log,
  });
  return { c, calls, lines };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('OutageClock', () => {
  it('serves what it holds until the last contact plus --max-offline, then withdraws', () => {
    const { c, calls, lines } = clock();
    vi.advanceTimersByTime(10_000);
    c.contact(false);
    vi.advanceTimersByTime(5_000);
    c.lost();
    expect(c.view()).toEqual({
      state: 'offline',
      lastContact: 1_010_000,
      offlineSince: 1_015_000,
      deadline: 1_070_000,
    });

    vi.advanceTimersByTime(MAX_OFFLINE - 5_001);
    expect([c.view().state, calls.withdraw]).toEqual(['offline', 0]);

    vi.advanceTimersByTime(1);
    expect([c.view().state, calls.withdraw]).toEqual(['expired', 1]);
    const removal = lines.find((l) => l.msg.includes('past --max-offline'));
    expect(removal).toMatchObject({
      level: WARN,
      envFile: '/sandbox/env/.env',
      files: ['~/.config/gh/hosts.json'],
    });
  });

  it('reports every TICK_MS while offline, and not while attached', () => {
    const { c, calls } = clock();
    vi.advanceTimersByTime(TICK_MS * 3);
    expect(calls.changed).toBe(0);

    c.lost();
    vi.advanceTimersByTime(TICK_MS * 3);
    expect(calls.changed).toBe(4);

    c.contact(true);
    vi.advanceTimersByTime(TICK_MS * 3);
    expect(calls.changed).toBe(5);
  });

  it('ends an outage at any contact before the deadline, without restoring', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE / 2);
    c.contact(false);
    vi.advanceTimersByTime(MAX_OFFLINE);
    expect(c.view()).toMatchObject({ state: 'attached', offlineSince: undefined });
    expect([calls.withdraw, calls.restore]).toEqual([0, 0]);
  });

  it('restores after the deadline only on a sealed message, not on a heartbeat', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE);
    expect(c.view().state).toBe('expired');

    c.contact(false);
    expect([c.view().state, calls.restore]).toEqual(['expired', 0]);

    c.contact(true);
    expect([c.view().state, calls.restore]).toEqual(['attached', 1]);
  });

  it('counts a new outage from the contact that ended the last one', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE - 1);
    c.contact(true);
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE - 1);
    expect([c.view().state, calls.withdraw]).toEqual(['offline', 0]);

    vi.advanceTimersByTime(1);
    expect(c.view().state).toBe('expired');
  });

  it('withdraws at once when the stream is found dead past the deadline', () => {
    const { c, calls } = clock();
    vi.advanceTimersByTime(MAX_OFFLINE * 2);
    c.lost();
    vi.advanceTimersByTime(0);
    expect([c.view().state, calls.withdraw]).toEqual(['expired', 1]);
  });

  it('stops counting on revocation, and stop() leaves a revoked or expired state as it is', () => {
    const revoked = clock();
    revoked.c.lost();
    revoked.c.revoked();
    revoked.c.stop();
    vi.advanceTimersByTime(MAX_OFFLINE * 2);
    expect([revoked.c.view().state, revoked.calls.withdraw]).toEqual(['revoked', 0]);

    const expired = clock();
    expired.c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE);
    expired.c.stop();
    expect(expired.c.view().state).toBe('expired');

    const attached = clock();
    attached.c.stop();
    attached.c.contact(true);
    expect(attached.c.view().state).toBe('stopped');
  });
});
