import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { OutputStage } from './output.js';
import { loadPty } from './pty.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface Child {
  /** Resolves with the exit code the agent should exit with: the child's, or 128 + signal. */
  exited: Promise<number>;
  kill(signal: NodeJS.Signals): void;
}

export interface ChildIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Starts the run's command with the given environment. When the agent itself runs on a
 * terminal the command gets a pseudo-terminal (colours and line editing survive) and its
 * terminal stream goes through the output stage; otherwise its stdout and stderr each go
 * through their own. SIGINT, SIGTERM and SIGHUP sent to the agent are forwarded.
 */
export function startChild(
  command: string[],
  env: NodeJS.ProcessEnv,
  stage: OutputStage,
  io: ChildIo,
  log: Logger,
): Child {
  const onTerminal = io.stdin.isTTY === true && (io.stdout as NodeJS.WriteStream).isTTY === true;
  if (onTerminal) {
    const pty = loadPty();
    if (pty !== undefined) return startOnPty(pty, command, env, stage, io);
    log.warn('no pseudo-terminal support here (@lydell/node-pty is not installed): using pipes');
  }
  return startOnPipes(command, env, stage, io, log);
}

function startOnPipes(
  command: string[],
  env: NodeJS.ProcessEnv,
  stage: OutputStage,
  io: ChildIo,
  log: Logger,
): Child {
  const [file, ...args] = command;
  if (file === undefined) throw new Error('no command to run');
  const child = spawn(file, args, { env, stdio: ['inherit', 'pipe', 'pipe'] });
  const stdoutDone = pipe(child.stdout, stage.stream('stdout'), io.stdout);
  const stderrDone = pipe(child.stderr, stage.stream('stderr'), io.stderr);
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

function startOnPty(
  pty: NonNullable<ReturnType<typeof loadPty>>,
  command: string[],
  env: NodeJS.ProcessEnv,
  stage: OutputStage,
  io: ChildIo,
): Child {
  const [file, ...args] = command;
  if (file === undefined) throw new Error('no command to run');
  const out = io.stdout as NodeJS.WriteStream;
  const term = pty.spawn(file, args, {
    name: env.TERM ?? 'xterm-256color',
    cols: out.columns ?? 80,
    rows: out.rows ?? 24,
    cwd: process.cwd(),
    env,
  });
  const screen = stage.stream('stdout');
  screen.on('data', (chunk: Buffer) => io.stdout.write(chunk));
  term.onData((data) => screen.write(Buffer.from(data, 'utf8')));
  io.stdin.setRawMode?.(true);
  const input = (data: Buffer) => term.write(data);
  io.stdin.on('data', input);
  const resize = () => term.resize(out.columns ?? 80, out.rows ?? 24);
  out.on('resize', resize);
  const forward = (signal: NodeJS.Signals) => term.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);

  const exited = new Promise<number>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      for (const s of FORWARDED) process.off(s, forward);
      out.off('resize', resize);
      io.stdin.off('data', input);
      io.stdin.setRawMode?.(false);
      io.stdin.pause();
      screen.end();
      screen.on('end', () => resolve(signal ? 128 + signal : exitCode));
      screen.resume();
    });
  });
  return { exited, kill: (signal) => term.kill(signal) };
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
