import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../common/fs.js';
import type { Held } from './apply.js';
import type { AgentState, OutageView } from './outage.js';

/** A connected account as the status file shows it: never its token. */
export interface AccountView {
  name: string;
  status: string;
  /** When its access token expires (ISO 8601); null when the bundle gives no expiry. */
  expireTime: string | null;
  /** True once that time has passed: its entries and files were removed. */
  expired: boolean;
}

/**
 * The agent's status file (JSON). Times are ISO 8601; it names files and accounts, never a
 * value. See docs/agent.md.
 */
export interface AgentStatus {
  runId: string;
  state: AgentState;
  /** The agent's process id. */
  pid: number;
  /** When the agent wrote this. */
  updateTime: string;
  envFile: string;
  /** Version of the bundle held. */
  version: number;
  /** When the agent received that version. */
  versionTime: string;
  /** The last sealed message from the control plane (bundle, update or heartbeat). */
  lastContactTime: string;
  /** When the stream dropped; null while attached. */
  offlineTime: string | null;
  /** The outage limit in force: --max-offline, or the collection's (see docs/agent.md). */
  maxOfflineSeconds: number;
  /** When the files go (offline) or went (expired); null otherwise. */
  deadlineTime: string | null;
  /** Seconds from updateTime to deadlineTime, at least 0; null without a deadline. */
  offlineLeftSeconds: number | null;
  accounts: AccountView[];
}

export interface StatusInput {
  runId: string;
  envFile: string;
  outage: OutageView;
  held: Held | undefined;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** The status file's content, from the outage clock's view and the bundle held. */
export function statusOf(input: StatusInput, now: number = Date.now()): AgentStatus {
  const { state, maxOfflineMs, lastContact, offlineSince, deadline } = input.outage;
  const { held } = input;
  return {
    runId: input.runId,
    state,
    pid: process.pid,
    updateTime: new Date(now).toISOString(),
    envFile: input.envFile,
    version: held?.bundle.version ?? 0,
    versionTime: new Date(held?.receivedAt ?? now).toISOString(),
    lastContactTime: new Date(lastContact).toISOString(),
    offlineTime: iso(offlineSince),
    maxOfflineSeconds: maxOfflineMs / 1000,
    deadlineTime: iso(deadline),
    offlineLeftSeconds:
      deadline === undefined ? null : Math.max(0, Math.round((deadline - now) / 1000)),
    accounts: (held?.bundle.accounts ?? []).map((a) => ({
      name: a.name,
      status: a.status,
      expireTime: iso(a.expireTime?.getTime()),
      expired: a.expireTime !== undefined && a.expireTime.getTime() <= now,
    })),
  };
}

const STATES: readonly string[] = ['attached', 'offline', 'expired', 'revoked', 'stopped'];

/** A status file that is not one: not JSON, or without the fields the summary reads. */
export class StatusFileError extends Error {
  constructor(path: string) {
    super(`${path} is not an agent status file`);
    this.name = 'StatusFileError';
  }
}

/**
 * Writes the agent's status file: mode 0600, atomically, its missing directories made 0700.
 * A failure is logged once by path and code, and the agent goes on: the status is for people,
 * the run does not depend on it.
 */
export class StatusFile {
  private failed = false;

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /** Removes a file an earlier agent left, so no one reads its state as this agent's. */
  clear(): void {
    try {
      rmSync(this.path, { force: true });
    } catch (err) {
      this.fail(err);
    }
  }

  write(status: AgentStatus): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.path, `${JSON.stringify(status, null, 2)}\n`, 0o600);
      this.failed = false;
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;

    this.failed = true;
    const code = (err as NodeJS.ErrnoException).code;
    this.log.warn({ statusFile: this.path, code }, 'status file not written');
  }
}

/** The status file's text and what it says; undefined when there is no file at `path`. */
export function readStatusFile(path: string): { text: string; status: AgentStatus } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StatusFileError(path);
  }

  if (!isStatus(parsed)) throw new StatusFileError(path);
  return { text, status: parsed };
}

function isStatus(v: unknown): v is AgentStatus {
  if (typeof v !== 'object' || v === null) return false;

  const o = v as Record<string, unknown>;
  return (
    typeof o.runId === 'string' &&
    typeof o.state === 'string' &&
    STATES.includes(o.state) &&
    typeof o.version === 'number' &&
    typeof o.versionTime === 'string' &&
    typeof o.lastContactTime === 'string' &&
    typeof o.updateTime === 'string' &&
    typeof o.maxOfflineSeconds === 'number' &&
    (o.deadlineTime === null || typeof o.deadlineTime === 'string') &&
    (o.offlineTime === null || typeof o.offlineTime === 'string') &&
    Array.isArray(o.accounts) &&
    o.accounts.every(isAccount)
  );
}

function isAccount(v: unknown): v is AccountView {
  if (typeof v !== 'object' || v === null) return false;

  const o = v as Record<string, unknown>;
  return (
    typeof o.name === 'string' &&
    typeof o.status === 'string' &&
    (o.expireTime === null || typeof o.expireTime === 'string') &&
    typeof o.expired === 'boolean'
  );
}
