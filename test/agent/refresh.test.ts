import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ASK_INTERVAL_MS,
  RefreshScheduler,
  refreshAccountRequest,
  refreshDueAt,
} from '../../agent/refresh.js';
import { newKeyPair, openWith, sharedKey } from '../../common/sealing.js';
import {
  type AccountState,
  type RefreshAccountRequest,
  RefreshAccountStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { captureLog, WARN } from './log-capture.js';

const RUN_ID = 'run_0123456789abcdef';
const START = Date.UTC(2030, 0, 1);

beforeEach(() => {
  vi.useFakeTimers({ now: START });
});

afterEach(() => {
  vi.useRealTimers();
});

const inSeconds = (s: number) => new Date(START + s * 1000);
const account = (name: string, expireAt: Date, status = 'connected'): AccountState => ({
  name,
  status,
  expireTime: expireAt,
});

/** A scheduler whose asks are recorded by account and answered by `answer`. */
function scheduler(answer: () => Promise<void> = async () => {}) {
  const asks: string[] = [];
  const captured = captureLog();
  const refresh = new RefreshScheduler({
    ask: (a) => {
      asks.push(a);
      return answer();
    },
    log: captured.log,
  });
  return { refresh, asks, ...captured };
}

describe('refreshDueAt()', () => {
  it('is a tenth of the token life before expiry, and at least 5 s', () => {
    expect(refreshDueAt(0, 3_600_000)).toBe(3_240_000);
    expect(refreshDueAt(0, 20_000)).toBe(15_000);
    expect(refreshDueAt(10_000, 8_000)).toBe(3_000);
  });
});

describe('RefreshScheduler', () => {
  it('asks once when the token falls due, and not before', async () => {
    const { refresh, asks } = scheduler();
    refresh.update([account('github', inSeconds(100))]);
    await vi.advanceTimersByTimeAsync(89_999);
    expect(asks).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(asks).toEqual(['github']);
    // The fresh token arrives as a new bundle: nothing more until it falls due in turn.
    refresh.update([account('github', inSeconds(1090))]);
    await vi.advanceTimersByTimeAsync(500_000);
    expect(asks).toEqual(['github']);
    refresh.stop();
  });

  it('asks at most once per 10 s while no newer bundle comes', async () => {
    const { refresh, asks } = scheduler();
    refresh.update([account('github', inSeconds(3))]);
    await vi.advanceTimersByTimeAsync(0);
    expect(asks).toEqual(['github']);
    await vi.advanceTimersByTimeAsync(ASK_INTERVAL_MS - 1);
    refresh.update([account('github', inSeconds(3))]);
    await vi.advanceTimersByTimeAsync(0);
    expect(asks).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(asks).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(3 * ASK_INTERVAL_MS);
    expect(asks).toHaveLength(5);
    refresh.stop();
  });

  it('logs a failed ask by account and tries again 10 s later', async () => {
    const failure = Object.assign(new Error('14 UNAVAILABLE: down'), { code: 14, details: 'down' });
    const { refresh, asks, lines } = scheduler(() => Promise.reject(failure));
    refresh.update([account('github', inSeconds(2))]);
    await vi.advanceTimersByTimeAsync(0);
    const warned = lines.filter((l) => l.level === WARN);
    expect(warned.map((l) => [l.msg, l.account, l.code, l.reason])).toEqual([
      ['refresh ask failed', 'github', 14, 'down'],
    ]);
    await vi.advanceTimersByTimeAsync(ASK_INTERVAL_MS - 1);
    expect(asks).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(asks).toHaveLength(2);
    refresh.stop();
  });

  it('survives an ask that throws instead of rejecting', async () => {
    const { refresh, asks } = scheduler(() => {
      throw new Error('no attached run to ask for');
    });
    refresh.update([account('github', inSeconds(2))]);
    await vi.advanceTimersByTimeAsync(ASK_INTERVAL_MS);
    expect(asks).toHaveLength(2);
    refresh.stop();
  });

  it('does not ask again while an ask is still in flight', async () => {
    const { refresh, asks } = scheduler(() => new Promise(() => {}));
    refresh.update([account('github', inSeconds(2))]);
    await vi.advanceTimersByTimeAsync(5 * ASK_INTERVAL_MS);
    expect(asks).toEqual(['github']);
    refresh.stop();
  });

  it('keeps the due time of an expiry it already held when an unrelated bundle comes', async () => {
    const { refresh, asks } = scheduler();
    refresh.update([account('github', inSeconds(100))]);
    await vi.advanceTimersByTimeAsync(80_000);
    // Counted from this bundle the margin would be 5 s (due at 95 s); the held one is 10 s.
    refresh.update([account('github', inSeconds(100))]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(asks).toEqual(['github']);
    refresh.stop();
  });

  it('never asks for an account that needs reconnecting, or one without an expiry', async () => {
    const { refresh, asks } = scheduler();
    refresh.update([
      account('github', inSeconds(1), 'needs_reconnect'),
      { name: 'slack', status: 'connected' },
      account('linear', inSeconds(1), 'refresh_failing'),
    ]);
    await vi.advanceTimersByTimeAsync(ASK_INTERVAL_MS + 1);
    expect(asks).toEqual(['linear', 'linear']);
    refresh.stop();
  });

  it('asks nothing and holds no timer after stop()', async () => {
    const { refresh, asks } = scheduler();
    refresh.update([account('github', inSeconds(100))]);
    expect(vi.getTimerCount()).toBe(1);
    refresh.stop();
    expect(vi.getTimerCount()).toBe(0);
    refresh.update([account('github', inSeconds(1))]);
    await vi.advanceTimersByTimeAsync(200_000);
    expect(asks).toEqual([]);
  });

  it('seals a statement the control plane opens with its side of the shared key', async () => {
    const server = newKeyPair();
    const agent = newKeyPair();
    const agentShared = sharedKey(server.publicKey, agent.secretKey);
    const sent: RefreshAccountRequest[] = [];
    const refresh = new RefreshScheduler({
      ask: async (a) => {
        sent.push(refreshAccountRequest(RUN_ID, a, agentShared));
      },
      log: captureLog().log,
    });
    refresh.update([account('github', inSeconds(4))]);
    await vi.advanceTimersByTimeAsync(0);
    refresh.stop();

    expect(sent).toHaveLength(1);
    const request = sent[0]!;
    expect(request.runId).toBe(RUN_ID);
    const opened = openWith(request, sharedKey(agent.publicKey, server.secretKey));
    expect(RefreshAccountStatement.decode(opened)).toEqual({
      runId: RUN_ID,
      account: 'github',
      time: new Date(START),
    });
  });
});
