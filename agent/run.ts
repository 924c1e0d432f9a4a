import type { Logger } from 'pino';
import { type Bundle, Layer } from '../proto/gen/runkeys/v1/runs.js';
import type { AgentConfig } from './config.js';
import { toDotenv } from './dotenv.js';
import { removeEnvFile, writeEnvFile } from './env-file.js';
import { type Child, startChild } from './exec.js';
import type { OutputStage } from './output.js';
import { Session, type SessionEvent } from './session.js';

export interface AgentIo {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** What runs beside the command for the run's life, started once the first bundle is in. */
export interface Companion {
  stop(): void;
}

const LAYER_NAMES: Record<number, string> = {
  [Layer.LAYER_PROVIDER]: 'provider',
  [Layer.LAYER_ENV]: 'env',
  [Layer.LAYER_ACCOUNT]: 'account',
  [Layer.LAYER_UNSPECIFIED]: 'removed',
};

/**
 * The child's environment: the sandbox's own, less every RUNKEYS_* variable (the agent's
 * settings and anything else of runkeys) and the bundle's unset names, plus the bundle.
 */
export function childEnvironment(base: NodeJS.ProcessEnv, bundle: Bundle): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of Object.keys(env)) if (name.startsWith('RUNKEYS_')) delete env[name];
  for (const name of bundle.unset) delete env[name];
  for (const e of bundle.entries) env[e.name] = e.value;
  return env;
}

/**
 * Runs the agent until the run ends or the command exits, and returns the exit code:
 * 1. attach and wait for the first bundle;
 * 2. on every bundle: tell the output stage first, then write the .env;
 * 3. exec mode: start the command after the first bundle and exit with its code;
 *    sidecar mode: keep the .env current until revocation or SIGTERM;
 * 4. on revocation: remove the .env; the command is left alone unless --on-revoke=terminate.
 */
export async function runAgent(
  config: AgentConfig,
  stage: OutputStage,
  io: AgentIo,
  log: Logger,
  companions: () => Companion[] = () => [],
): Promise<number> {
  let started: Companion[] = [];
  let child: Child | undefined;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const onEvent = (e: SessionEvent) => {
    if (e.kind === 'fatal') {
      io.stderr.write(`runkeys agent: ${e.message}\n`);
      finish(e.exitCode);
      return;
    }
    if (e.kind === 'revoked') {
      removeEnvFile(config.envFile);
      log.warn({ reason: e.reason, envFile: config.envFile }, 'run revoked; removed the .env');
      if (child === undefined) finish(0);
      else if (config.onRevoke === 'terminate') child.kill('SIGTERM');
      return;
    }
    // 2.
    apply(e.bundle, config, stage, log);
    // 3.
    if (e.first) started = companions();
    if (e.first && config.command.length > 0) {
      child = startChild(config.command, childEnvironment(io.env, e.bundle), stage, io, log);
      child.exited.then(finish);
    }
  };

  // 1.
  const session = new Session(config, log, onEvent);
  const running = session.run();
  const onTerm = () => {
    if (child === undefined) finish(0);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  const code = await done;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onTerm);
  session.stop();
  for (const c of started) c.stop();
  await running;
  return code;
}

function apply(bundle: Bundle, config: AgentConfig, stage: OutputStage, log: Logger): void {
  stage.update(bundle.entries);
  for (const c of bundle.conflicts) {
    log.warn(
      { variable: c.name, winner: LAYER_NAMES[c.winner], loser: LAYER_NAMES[c.loser] },
      'two layers give the same name',
    );
  }
  const { text, keptOut } = toDotenv(bundle.entries);
  writeEnvFile(config.envFile, text);
  if (keptOut.length > 0) {
    log.warn({ variables: keptOut }, 'values no .env quoting carries exactly: environment only');
  }
  log.info(
    { version: bundle.version, envFile: config.envFile, entries: bundle.entries.length },
    '.env written',
  );
}
