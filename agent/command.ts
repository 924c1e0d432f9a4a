import { Command } from 'commander';
import { AgentConfigError, type AgentFlags, agentConfig } from './config.js';
import { agentLogger } from './log.js';
import { passThroughStage } from './output.js';
import { type AgentIo, runAgent } from './run.js';

export const EXIT_USAGE = 64;

/**
 * `runkeys agent [flags] [-- CMD ARGS...]`, shared by the runkeys CLI and the one-file agent.
 * The exit code is set on process.exitCode.
 */
export function agentCommand(io: AgentIo): Command {
  return new Command('agent')
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
    .option('--ca-cert <path>', 'PEM CA to verify the control plane (env RUNKEYS_CA_CERT)')
    .option('--log-level <level>', 'agent log level', 'info')
    .action(async (command: string[], _local: unknown, cmd: Command) => {
      // Under `runkeys agent` the root program parses --addr and --ca-cert itself.
      const flags = cmd.optsWithGlobals<AgentFlags & { logLevel: string }>();
      const log = agentLogger(flags.logLevel);
      try {
        const config = agentConfig(flags, command, io.env, process.cwd());
        process.exitCode = await runAgent(config, passThroughStage(), io, log);
      } catch (err) {
        if (!(err instanceof AgentConfigError)) throw err;
        io.stderr.write(`runkeys agent: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
      }
    });
}
