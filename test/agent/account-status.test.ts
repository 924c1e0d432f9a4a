import { describe, expect, it } from 'vitest';
import { AccountStatusLog } from '../../agent/account-status.js';
import { captureLog, INFO, WARN } from './log-capture.js';

const state = (name: string, status: string) => ({ name, status });

describe('AccountStatusLog', () => {
  it('logs a status when it changes and nothing while it stays the same', () => {
    const { log, lines } = captureLog();
    const accounts = new AccountStatusLog(log);
    const seen = (...states: { name: string; status: string }[]) => {
      const from = lines.length;
      accounts.observe(states);
      return lines
        .slice(from)
        .filter((l) => l.level >= INFO)
        .map((l) => [l.level, l.msg]);
    };

    expect(seen(state('github', 'connected'), state('slack', 'connected'))).toEqual([]);
    expect(seen(state('github', 'connected'), state('slack', 'connected'))).toEqual([]);
    expect(seen(state('github', 'refresh_failing'), state('slack', 'connected'))).toEqual([
      [WARN, 'account github: the control plane cannot refresh its token for now'],
    ]);
    expect(seen(state('github', 'refresh_failing'), state('slack', 'connected'))).toEqual([]);
    expect(seen(state('github', 'connected'), state('slack', 'connected'))).toEqual([
      [INFO, 'account github is connected again'],
    ]);
    expect(seen(state('github', 'connected'), state('slack', 'needs_reconnect'))).toEqual([
      [WARN, 'account slack needs an admin to connect it again; its token was removed'],
    ]);
    expect(seen(state('github', 'connected'), state('slack', 'needs_reconnect'))).toEqual([]);
    expect(seen(state('github', 'connected'))).toEqual([[INFO, 'account no longer in the bundle']]);
  });

  it('warns about an account that needs reconnecting in the first bundle', () => {
    const { log, lines } = captureLog();
    new AccountStatusLog(log).observe([state('github', 'needs_reconnect')]);
    expect(lines.map((l) => [l.level, l.account, l.status])).toEqual([
      [WARN, 'github', 'needs_reconnect'],
    ]);
  });
});
