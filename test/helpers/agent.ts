import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import dotenv from 'dotenv';
import { CLI, REPO_ROOT } from './cli.js';

/** The one-file agent `npm run build` bundles for sandbox images. */
export const AGENT_FILE = join(REPO_ROOT, 'dist', 'runkeys-agent.cjs');

/** `one-file`: node dist/runkeys-agent.cjs; `cli`: node bin/runkeys.js agent. */
export type AgentEntry = 'one-file' | 'cli';

export interface AgentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AgentProcess {
  pid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<AgentExit>;
  signal(signal: NodeJS.Signals): void;
}

export interface AgentOptions {
  entry?: AgentEntry;
  /** The sandbox's working directory. */
  cwd: string;
  /** The sandbox's environment besides PATH: the RUNKEYS_* settings and anything inherited. */
  env: Record<string, string>;
  flags?: string[];
  /** The run command (exec mode); none for sidecar mode. */
  command?: string[];
}

const running = new Set<number>();

/**
 * Starts an agent as its own process group, so stopAgents() can end it together with the
 * command it started.
 */
export function spawnAgent(o: AgentOptions): AgentProcess {
  const entry = o.entry === 'cli' ? [CLI, 'agent'] : [AGENT_FILE];
  const command = o.command === undefined ? [] : ['--', ...o.command];
  const child = spawn(process.execPath, [...entry, ...(o.flags ?? []), ...command], {
    cwd: o.cwd,
    env: { PATH: process.env.PATH ?? '', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid!;
  running.add(pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<AgentExit>((resolve) => {
    child.on('close', (code, signal) => {
      running.delete(pid);
      resolve({ code, signal });
    });
  });
  return {
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    signal: (s) => child.kill(s),
  };
}

/** Ends every agent this file started that is still running, with whatever it started. */
export function stopAgents(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone between the exit and its close event.
    }
  }
  running.clear();
}

/** Lines of the agent's stderr that are not its JSON log: what it tells a person. */
export function messages(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

/** One sandbox: a working directory with the agent's .env and the probe's files. */
export interface Sandbox {
  dir: string;
  envFile: string;
  /** Where the probe records what it saw. */
  report: string;
  /** The probe in `wait` mode finishes once this file exists. */
  go: string;
}

export function makeSandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'runkeys-sandbox-'));
  return {
    dir,
    envFile: join(dir, 'env', '.env'),
    report: join(dir, 'report.json'),
    go: join(dir, 'go'),
  };
}

/**
 * The run command the tests give the agent: a node child that records its environment and the
 * .env as it reads them. It writes them to a file, not stdout, so that what it reports does not
 * depend on the agent's output stage. Modes:
 * - `exit:N`: record, then exit with N;
 * - `sigterm`: record, then kill itself with SIGTERM;
 * - `wait`: print `tick N` every 100 ms until the go file exists (or SIGTERM), then record,
 *   print `done` and exit 0; after 30 s without the go file, exit 3.
 */
const PROBE = `
const fs = require('node:fs');
const [report, envFile, mode, go] = process.argv.slice(1);
const record = () => {
  const dotenv = fs.existsSync(envFile) ? fs.readFileSync(envFile, 'utf8') : null;
  fs.writeFileSync(report + '.tmp', JSON.stringify({ env: process.env, dotenv }));
  fs.renameSync(report + '.tmp', report);
};
if (mode === 'sigterm') {
  record();
  setTimeout(() => process.exit(2), 10000);
  process.kill(process.pid, 'SIGTERM');
} else if (mode === 'wait') {
  let tick = 0;
  const started = Date.now();
  const timer = setInterval(() => {
    console.log('tick ' + ++tick);
    if (Date.now() - started > 30000) process.exit(3);
    if (!fs.existsSync(go)) return;
    clearInterval(timer);
    record();
    console.log('done');
  }, 100);
} else {
  record();
  process.exitCode = Number(mode.slice('exit:'.length));
}
`;

export type ProbeMode = `exit:${number}` | 'sigterm' | 'wait';

export function probe(sandbox: Sandbox, mode: ProbeMode): string[] {
  return [process.execPath, '-e', PROBE, sandbox.report, sandbox.envFile, mode, sandbox.go];
}

export interface ProbeReport {
  env: Record<string, string>;
  /** The .env text as the child read it, or null when there was none. */
  dotenv: string | null;
}

export function readReport(sandbox: Sandbox): ProbeReport {
  return JSON.parse(readFileSync(sandbox.report, 'utf8')) as ProbeReport;
}

/** A .env read by both readers the agent writes for; a test compares each with what it set. */
export function parseDotenv(text: string): {
  dotenv: Record<string, string>;
  node: Record<string, string>;
} {
  return { dotenv: dotenv.parse(text), node: parseEnv(text) as Record<string, string> };
}
