import type { Bundle, BundleEntry, BundleFile } from '../proto/gen/runkeys/v1/runs.js';

/** What of a bundle is still valid at a given time, and when that changes next. */
export interface LiveView {
  entries: BundleEntry[];
  files: BundleFile[];
  /** Entries left out because their expiry has passed, by name. */
  expiredVariables: string[];
  /** Accounts whose token expiry has passed; their credential files are left out. */
  expiredAccounts: string[];
  /** The next expiry still to come (ms since the epoch); undefined when there is none. */
  nextExpiry: number | undefined;
}

/**
 * Policy: the part of a bundle the agent may still serve at `now`. An entry with an expiry
 * (an OAuth access token) is left out from its expiry on; a credential file is left out from
 * the expiry of its account's token (AccountState.expire_time). Values without an expiry
 * never lapse. The clock is the sandbox's.
 */
export function liveView(bundle: Bundle, now: number): LiveView {
  let nextExpiry: number | undefined;
  const lapsed = (at: Date | undefined): boolean => {
    if (at === undefined) return false;

    const t = at.getTime();
    if (t <= now) return true;

    nextExpiry = Math.min(nextExpiry ?? t, t);
    return false;
  };

  const expiredAccounts = bundle.accounts.filter((a) => lapsed(a.expireTime)).map((a) => a.name);
  const entries: BundleEntry[] = [];
  const expiredVariables: string[] = [];
  for (const e of bundle.entries) {
    if (lapsed(e.expireTime)) expiredVariables.push(e.name);
    else entries.push(e);
  }
  const files = bundle.files.filter((f) => !expiredAccounts.includes(f.account));
  return { entries, files, expiredVariables, expiredAccounts, nextExpiry };
}
