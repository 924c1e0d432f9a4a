import type { Logger } from 'pino';
import type { AccountState } from '../proto/gen/runkeys/v1/runs.js';

/** How a connected account stands, as AccountState.status gives it. */
export const AccountStatus = {
  connected: 'connected',
  refreshFailing: 'refresh_failing',
  needsReconnect: 'needs_reconnect',
} as const;

/**
 * Logs each connected account's status when it changes from one bundle to the next, by name,
 * and says nothing while it stays the same. An account first seen connected is the normal
 * case and is logged at debug only.
 */
export class AccountStatusLog {
  private last = new Map<string, string>();

  constructor(private readonly log: Logger) {}

  observe(accounts: readonly AccountState[]): void {
    const next = new Map<string, string>();
    for (const { name, status } of accounts) {
      next.set(name, status);
      const before = this.last.get(name);
      if (status !== before) this.report(name, status, before);
    }
    for (const name of this.last.keys()) {
      if (!next.has(name)) this.log.info({ account: name }, 'account no longer in the bundle');
    }
    this.last = next;
  }

  private report(name: string, status: string, before: string | undefined): void {
    const fields = { account: name, status };
    switch (status) {
      case AccountStatus.needsReconnect:
        this.log.warn(
          fields,
          `account ${name} needs an admin to connect it again; its token was removed`,
        );
        return;
      case AccountStatus.refreshFailing:
        this.log.warn(
          fields,
          `account ${name}: the control plane cannot refresh its token for now`,
        );
        return;
      case AccountStatus.connected:
        if (before === undefined) this.log.debug(fields, `account ${name} connected`);
        else this.log.info(fields, `account ${name} is connected again`);
        return;
      default:
        this.log.warn(fields, `account ${name} has a status this agent does not know`);
    }
  }
}
