import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { OutputStage } from './output.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface Child {
  /** Resolves with the exit code the agent should exit with: the child's, or 128 + signal. */
  exited: Promise<number>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Starts the run's command with the given environment. Its stdout and stderr pass through the
 * output stage; SIGINT, SIGTERM and SIGHUP sent to the agent are forwarded to it.
 */
export function startChild(
  command: string[],
  env: NodeJS.ProcessEnv,
  stage: OutputStage,
  out: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  log: Logger,
): Child {
  const [file, ...args] = command;
  if (file === undefined) throw new Error('no command to run');
  const child = spawn(file, args, { env, stdio: ['inherit', 'pipe', 'pipe'] });
  const stdoutDone = pipe(child.stdout, stage.stream('stdout'), out.stdout);
  const stderrDone = pipe(child.stderr, stage.stream('stderr'), out.stderr);
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);

  const exited = new Promise<number>((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      log.error({ command: file, code: err.code }, 'command could not be started');
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('close', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      Promise.all([stdoutDone, stderrDone]).then(() => {
        if (signal !== null) resolve(128 + (constants.signals[signal] ?? 0));
        else resolve(code ?? 1);
      });
    });
  });
  return { exited, kill: (signal) => child.kill(signal) };
}

function pipe(
  from: NodeJS.ReadableStream,
  through: NodeJS.ReadWriteStream,
  to: NodeJS.WritableStream,
): Promise<void> {
  return new Promise((resolve) => {
    from.pipe(through);
    through.on('data', (chunk: Buffer) => to.write(chunk));
    through.on('end', () => resolve());
    through.on('error', () => resolve());
  });
}
