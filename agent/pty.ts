import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The part of @lydell/node-pty the agent uses. */
export interface Pty {
  onData(listener: (data: string) => void): void;
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): void;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
}

interface PtyModule {
  spawn(
    file: string,
    args: string[],
    options: { name: string; cols: number; rows: number; cwd: string; env: NodeJS.ProcessEnv },
  ): Pty;
}

/**
 * node-pty is a native addon: present where the runkeys package is installed, absent from the
 * one-file agent. Without it the command gets pipes (and loses colours and line editing).
 */
export function loadPty(): PtyModule | undefined {
  try {
    // Resolved from the entry script's real location, which works for both the runkeys CLI
    // (ES modules) and the one-file agent (CommonJS).
    const from = realpathSync(process.argv[1] ?? `${process.cwd()}/`);
    return createRequire(from)('@lydell/node-pty') as PtyModule;
  } catch {
    // Not installed here: the caller falls back to pipes and says so.
    return undefined;
  }
}
