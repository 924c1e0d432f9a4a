import type { Logger } from 'pino';
import type { Bundle } from '../proto/gen/runkeys/v1/runs.js';
import { BundleApplier } from './apply.js';
import type { AgentConfig } from './config.js';
import { type Child, startChild } from './exec.js';
import { OutageClock } from './outage.js';
import type { OutputStage } from './output.js';
import { RefreshScheduler } from './refresh.js';
import { type LeakCounter, Reporter } from './report.js';
import { Session, type SessionEvent } from './session.js';
import { StatusFile, statusOf } from './status-file.js';
import { liveView } from './token-expiry.js';

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
 * 2. on every bundle: apply it (BundleApplier: secrets to the output stage first, then the
 *    .env less expired tokens, the credential files and account status logs), then hand its
 *    accounts to the refresh scheduler, which the first bundle starts beside the other
 *    companions and the outage clock;
 * 3. exec mode: start the command after the first bundle and exit with its code;
 *    sidecar mode: keep the .env and files current until revocation or SIGTERM;
 * 4. contact and stream losses go to the outage clock, which removes the .env and the files
 *    past the outage limit (--max-offline, or the collection's from the bundle) and has them
 *    written again on resume; the command is left alone;
 * 5. on revocation: stop asking for refreshes and remove the .env and the credential files;
 *    the command is left alone unless --on-revoke=terminate;
 * 6. acknowledge every bundle applied, and report what the scrubber replaced (Reporter), the
 *    last of it on the way out.
 * The status file is written on every change, and every few seconds while offline.
 */
export async function runAgent(
  config: AgentConfig,
  stage: OutputStage,
  io: AgentIo,
  log: Logger,
  companions: () => Companion[] = () => [],
  leaks?: LeakCounter,
): Promise<number> {
  let started: Companion[] = [];
  let refresher: RefreshScheduler | undefined;
  let clock: OutageClock | undefined;
  let child: Child | undefined;
  const applier = new BundleApplier(config, stage, log, { expired: () => report() });
  const status = new StatusFile(config.statusFile, log);
  const report = () => {
    if (clock === undefined) return;

    status.write(statusOf({ ...config, outage: clock.view(), held: applier.held() }));
  };
  status.clear();
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
    if (e.kind === 'contact') {
      // 4.
      clock?.contact();
      return;
    }
    if (e.kind === 'lost') {
      clock?.lost();
      return;
    }
    if (e.kind === 'revoked') {
      // 5.
      refresher?.stop();
      const files = applier.removeAll();
      clock?.revoked();
      log.warn(
        { reason: e.reason, envFile: config.envFile, files },
        'run revoked; removed the .env and credential files',
      );
      if (child === undefined) finish(0);
      else if (config.onRevoke === 'terminate') child.kill('SIGTERM');
      return;
    }
    // 2.
    applier.apply(e.bundle);
    if (e.first) {
      refresher = new RefreshScheduler({ ask: (a) => session.requestRefresh(a), log });
      clock = new OutageClock({
        own: { ms: config.maxOfflineMs, explicit: config.maxOfflineExplicit },
        envFile: config.envFile,
        withdraw: () => applier.removeAll(),
        restore: () => applier.restore(),
        changed: report,
        log,
      });
      started = [refresher, ...companions()];
    }
    refresher?.update(e.bundle.accounts);
    clock?.update(e.bundle.maxOfflineSeconds);
    report();
    // 3.
    const starts = e.first && config.command.length > 0;
    if (starts) {
      const live = { ...e.bundle, entries: liveView(e.bundle, Date.now()).entries };
      child = startChild(config.command, childEnvironment(io.env, live), stage, io, log);
      child.exited.then(finish);
    }
    // 6.
    reporter.receipt({
      version: e.bundle.version,
      digest: e.bundle.digest,
      applyTime: new Date(),
      envFileWritten: true,
      commandStarted: starts,
    });
  };
  const reporter = new Reporter({ send: (body) => session.report(body), leaks, log });
  if (leaks !== undefined) leaks.onCount = () => reporter.poke();

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
  applier.stop();
  clock?.stop();
  await running;
  // The trajectory's last lines and the command's last output are counted by now.
  await reporter.flush();
  session.close();
  return code;
}
