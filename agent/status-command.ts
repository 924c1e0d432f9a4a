import { resolve } from 'node:path';
import { Command } from 'commander';
import { formatDuration } from './duration.js';
import type { AgentState } from './outage.js';
import { type AccountView, type AgentStatus, readStatusFile } from './status-file.js';

/** `runkeys agent status` exits with the agent's state; 2 when there is no status to read. */
export const STATUS_EXIT: Record<AgentState, number> = {
  attached: 0,
  offline: 3,
  expired: 4,
  revoked: 4,
  stopped: 5,
};
export const EXIT_NO_STATUS = 2;

interface StatusFlags {
  statusFile?: string;
  json?: boolean;
}

const ago = (ms: number) => `${formatDuration(ms)} ago`;

function headline(s: AgentStatus, now: number): string {
  const deadline = s.deadlineTime === null ? undefined : Date.parse(s.deadlineTime);
  switch (s.state) {
    case 'attached':
      return 'on a live stream to the control plane';
    case 'offline': {
      const since =
        s.offlineTime === null ? '' : ` for ${formatDuration(now - Date.parse(s.offlineTime))}`;
      const left = deadline === undefined ? '' : `; they go in ${formatDuration(deadline - now)}`;
      return `control plane unreachable${since}; serving the .env and credential files${left}`;
    }
    case 'expired': {
      const when = deadline === undefined ? '' : ` ${ago(now - deadline)}`;
      return (
        'control plane unreachable past --max-offline; ' +
        `the .env and credential files were removed${when}`
      );
    }
    case 'revoked':
      return 'the run ended; the .env and credential files were removed';
    case 'stopped':
      return 'the agent exited; the .env and credential files are as it left them';
  }
}

function accountLine(a: AccountView, now: number): string {
  if (a.expireTime === null) return `account ${a.name}: ${a.status}, token without an expiry`;

  const at = Date.parse(a.expireTime);
  const token = a.expired
    ? `token expired ${ago(now - at)}, removed`
    : `token expires in ${formatDuration(at - now)}`;
  return `account ${a.name}: ${a.status}, ${token}`;
}

/** The few lines `runkeys agent status` prints for people; times are relative to `now`. */
export function describeStatus(s: AgentStatus, now: number): string {
  const lines = [
    `${s.state}: ${headline(s, now)}`,
    `run ${s.runId}, version ${s.version} received ${ago(now - Date.parse(s.versionTime))}`,
    `last contact ${ago(now - Date.parse(s.lastContactTime))}, ` +
      `max offline ${formatDuration(s.maxOfflineSeconds * 1000)}`,
    ...s.accounts.map((a) => accountLine(a, now)),
    `status written ${ago(now - Date.parse(s.updateTime))} by pid ${s.pid}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * `runkeys agent status [--status-file PATH] [--json]`: reads the status file an agent keeps
 * and prints a summary (or, with --json, the file). The exit code is set on process.exitCode:
 * STATUS_EXIT by state, EXIT_NO_STATUS without a status file.
 */
export function statusCommand(io: {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}): Command {
  return new Command('status')
    .description("show the agent's state from its status file: version held, its age, time left")
    .option('--status-file <path>', "the agent's status file (default env/status.json)")
    .option('--json', 'print the status file as it is')
    .action((_flags: unknown, cmd: Command) => {
      // Under `runkeys agent status`, `agent` parses --status-file, its own flag, itself.
      const flags = cmd.optsWithGlobals<StatusFlags>();
      const path = resolve(flags.statusFile ?? 'env/status.json');
      let read: ReturnType<typeof readStatusFile>;
      try {
        read = readStatusFile(path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === undefined ? (err as Error).message : `cannot read ${path} (${code})`;
        io.stderr.write(`runkeys agent status: ${why}\n`);
        process.exitCode = EXIT_NO_STATUS;
        return;
      }

      if (read === undefined) {
        io.stderr.write(
          `runkeys agent status: no status file at ${path}: is an agent running here? ` +
            '(see --status-file)\n',
        );
        process.exitCode = EXIT_NO_STATUS;
        return;
      }

      io.stdout.write(flags.json === true ? read.text : describeStatus(read.status, Date.now()));
      process.exitCode = STATUS_EXIT[read.status.state];
    });
}
