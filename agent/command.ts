import { homedir } from 'node:os';
import { Command } from 'commander';
import { handleClosedPipes, keepRunningOnClosedPipes } from './closed-pipes.js';
import { AgentConfigError, type AgentFlags, agentConfig } from './config.js';
import { agentLogger } from './log.js';
import { LeakCounter } from './report.js';
import { type AgentIo, runAgent } from './run.js';
import { Scrubber } from './scrub/scrubber.js';
import { scrubbedWriter, scrubStage } from './scrub-stage.js';
import { statusCommand } from './status-command.js';
import { followTrajectory, parseTrajectorySpec, type TrajectorySpec } from './trajectory-follow.js';

interface ScrubFlags {
  marker?: string;
  minLength: string;
  idleMs: string;
  trajectory: string[];
  logLevel: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function scrubSettings(flags: ScrubFlags) {
  const minLength = Number(flags.minLength);
  const idleMs = Number(flags.idleMs);
  if (!Number.isInteger(minLength) || minLength < 1) {
    throw new AgentConfigError('--min-length must be a whole number of bytes, at least 1');
  }
  if (!Number.isInteger(idleMs) || idleMs < 1) {
    throw new AgentConfigError('--idle-ms must be a whole number of milliseconds, at least 1');
  }
  const trajectories: TrajectorySpec[] = flags.trajectory.map((spec) => {
    const parsed = parseTrajectorySpec(spec);
    if (parsed === undefined) throw new AgentConfigError('--trajectory must be SRC:DST');
    return parsed;
  });
  let scrubber: Scrubber;
  try {
    scrubber = new Scrubber({ minLength, marker: flags.marker });
  } catch (err) {
    throw new AgentConfigError(`--marker: ${(err as Error).message}`);
  }
  return { scrubber, idleMs, trajectories };
}

export const EXIT_USAGE = 64;

/** $HOME, or the user's entry in the password database; undefined when neither gives one. */
function homeDirectory(): string | undefined {
  try {
    return homedir();
  } catch {
    // No HOME and no password entry (some minimal containers): "~/..." files are refused.
    return undefined;
  }
}

/**
 * `runkeys agent [flags] [-- CMD ARGS...]` and `runkeys agent status`, shared by the runkeys
 * CLI and the one-file agent. The exit code is set on process.exitCode.
 */
export function agentCommand(io: AgentIo): Command {
  return (
    new Command('agent')
      .description(
        'in a sandbox: attach to a run, write its .env, and run CMD with its credentials ' +
          '(sidecar mode without CMD)',
      )
      .argument('[command...]', 'the command to run, after --')
      .option('--addr <host:port>', 'control plane address (env RUNKEYS_ADDR)')
      .option('--run-id <id>', 'run id (env RUNKEYS_RUN_ID)')
      .option('--bootstrap-secret-file <path>', 'read the bootstrap secret from a file')
      .option('--server-key <base64>', 'control plane public key (env RUNKEYS_SERVER_KEY)')
      .option('--env-file <path>', '.env to write (default env/.env)')
      .option('--wait <seconds>', 'how long to try reaching the control plane at start', '30')
      .option('--on-revoke <what>', 'leave or terminate the command when the run ends', 'leave')
      .option(
        '--max-offline <duration>',
        'serve what the agent holds this long without the control plane, e.g. 90s, 15m, 1h ' +
          "(env RUNKEYS_MAX_OFFLINE; default the collection's limit, else 1h; " +
          "when given, a collection's shorter limit still wins)",
      )
      .option(
        '--status-file <path>',
        'where to write the status (default status.json beside the .env)',
      )
      .option('--ca-cert <path>', 'PEM CA to verify the control plane (env RUNKEYS_CA_CERT)')
      .option(
        '--client-cert <path>',
        'PEM client certificate, for a control plane that requires mutual TLS ' +
          '(env RUNKEYS_CLIENT_CERT; with --client-key)',
      )
      .option('--client-key <path>', 'PEM key of --client-cert (env RUNKEYS_CLIENT_KEY)')
      .option('--log-level <level>', 'agent log level', 'info')
      .option('--marker <template>', 'scrub marker; {name} becomes the variable name')
      .option('--min-length <bytes>', 'shortest value scrubbed', '8')
      .option('--idle-ms <ms>', 'release held-back output after this much silence', '100')
      .option(
        '--trajectory <SRC:DST>',
        'follow the JSON Lines file SRC and append its scrubbed copy to DST (repeatable)',
        collect,
        [],
      )
      // `agent status`, and its own options, go to the subcommand; `help` is no subcommand, so a
      // run command of that name still runs.
      .enablePositionalOptions()
      .helpCommand(false)
      .addCommand(statusCommand(io))
      .action(async (command: string[], _local: unknown, cmd: Command) => {
        // Under `runkeys agent` too: a closed output is dropped, never the end of the agent.
        keepRunningOnClosedPipes();
        handleClosedPipes([io.stderr], () => {});
        // Under `runkeys agent` the root program parses --addr and the TLS flags itself.
        const flags = cmd.optsWithGlobals<AgentFlags & ScrubFlags>();
        try {
          const { scrubber, idleMs, trajectories } = scrubSettings(flags);
          // The agent's own lines pass through the scrubber too.
          const stderr = scrubbedWriter(scrubber, io.stderr) as NodeJS.WritableStream;
          const log = agentLogger(flags.logLevel, stderr);
          const config = agentConfig(flags, command, io.env, process.cwd(), homeDirectory());
          const leaks = new LeakCounter(scrubber, log);
          const stage = scrubStage(scrubber, log, { idleMs, leaks });
          const companions = () =>
            trajectories.map((t) =>
              followTrajectory(t, scrubber, log, leaks.listener('trajectory')),
            );
          const agentIo = { ...io, stderr };
          process.exitCode = await runAgent(config, stage, agentIo, log, companions, leaks);
        } catch (err) {
          if (!(err instanceof AgentConfigError)) throw err;
          io.stderr.write(`runkeys agent: ${err.message}\n`);
          process.exitCode = EXIT_USAGE;
        }
      })
  );
}
