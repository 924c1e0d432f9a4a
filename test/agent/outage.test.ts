import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutageClock, outageLimitMs, TICK_MS } from '../../agent/outage.js';
import { captureLog, WARN } from './log-capture.js';

const MAX_OFFLINE = 60_000;

function clock(own = { ms: MAX_OFFLINE, explicit: true }) {
  const calls = { withdraw: 0, restore: 0, changed: 0 };
  const { log, lines } = captureLog();
  const c = new OutageClock({
    own,
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
    c.contact();
    vi.advanceTimersByTime(5_000);
    c.lost();
    expect(c.view()).toEqual({
      state: 'offline',
      maxOfflineMs: MAX_OFFLINE,
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

    c.contact();
    vi.advanceTimersByTime(TICK_MS * 3);
    expect(calls.changed).toBe(5);
  });

  it('ends an outage at any contact before the deadline, without restoring', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE / 2);
    c.contact();
    vi.advanceTimersByTime(MAX_OFFLINE);
    expect(c.view()).toMatchObject({ state: 'attached', offlineSince: undefined });
    expect([calls.withdraw, calls.restore]).toEqual([0, 0]);
  });

  it('restores after the deadline at the next contact', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE);
    expect([c.view().state, calls.restore]).toEqual(['expired', 0]);

    c.contact();
    expect([c.view().state, calls.restore]).toEqual(['attached', 1]);
  });

  it('counts a new outage from the contact that ended the last one', () => {
    const { c, calls } = clock();
    c.lost();
    vi.advanceTimersByTime(MAX_OFFLINE - 1);
    c.contact();
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
    attached.c.contact();
    expect(attached.c.view().state).toBe('stopped');
  });

  it('takes the limit of each bundle, and moves the deadline of an outage under way', () => {
    const { c, calls, lines } = clock({ ms: 3_600_000, explicit: false });
    c.update(0);
    expect([c.view().maxOfflineMs, calls.changed]).toEqual([3_600_000, 0]);

    c.update(120);
    expect(c.view().maxOfflineMs).toBe(120_000);
    expect(lines.find((l) => l.msg === 'outage limit changed')).toMatchObject({
      maxOfflineSeconds: 120,
    });
    c.lost();
    expect(c.view().deadline).toBe(1_120_000);

    c.update(60);
    expect(c.view().deadline).toBe(1_060_000);
    vi.advanceTimersByTime(59_999);
    expect([c.view().state, calls.withdraw]).toEqual(['offline', 0]);

    vi.advanceTimersByTime(1);
    expect([c.view().state, calls.withdraw]).toEqual(['expired', 1]);
  });

  it('goes back to its own limit when a bundle no longer carries one', () => {
    const { c } = clock({ ms: 3_600_000, explicit: false });
    c.update(300);
    c.update(0);
    expect(c.view().maxOfflineMs).toBe(3_600_000);
  });
});

describe('outageLimitMs()', () => {
  const given = { ms: 600_000, explicit: true };
  const defaulted = { ms: 3_600_000, explicit: false };

  it("keeps the agent's own limit when the collection sets none", () => {
    expect(outageLimitMs(given, 0)).toBe(600_000);
    expect(outageLimitMs(defaulted, 0)).toBe(3_600_000);
  });

  it('takes the shorter of an explicit --max-offline and the collection limit', () => {
    expect(outageLimitMs(given, 60)).toBe(60_000);
    expect(outageLimitMs(given, 86_400)).toBe(600_000);
  });

  it('lets the collection limit replace the default, longer or shorter', () => {
    expect(outageLimitMs(defaulted, 86_400)).toBe(86_400_000);
    expect(outageLimitMs(defaulted, 60)).toBe(60_000);
  });
});
