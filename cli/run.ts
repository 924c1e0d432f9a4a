import { status } from '@grpc/grpc-js';
import { Command, CommanderError } from 'commander';
import { agentCommand } from '../agent/command.js';
import { OperatorError } from '../common/operator-error.js';
import { packageVersion } from '../common/package-root.js';
import { registerAccounts } from './commands/accounts.js';
import { registerAudit } from './commands/audit.js';
import { registerCollections } from './commands/collections.js';
import { registerEnv } from './commands/env.js';
import { registerOAuthClients } from './commands/oauth-clients.js';
import { registerProviders } from './commands/providers.js';
import { registerRuns } from './commands/runs.js';
import { registerScrubCommand } from './commands/scrub.js';
import { registerServer } from './commands/server.js';
import { registerTokens } from './commands/tokens.js';
import type { CliIo } from './context.js';
import { EXIT_GRPC_BASE, EXIT_USAGE, isGrpcFailure, statusName, UsageError } from './errors.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('runkeys')
    .description('credentials into AI-agent sandboxes, and out of everything the run prints')
    .option(
      '--addr <host:port>',
      'control plane address (env RUNKEYS_ADDR, default 127.0.0.1:7443)',
    )
    .option('--ca-cert <path>', 'PEM CA to verify the server with TLS (env RUNKEYS_CA_CERT)')
    .option('--client-cert <path>', 'client certificate for mutual TLS (env RUNKEYS_CLIENT_CERT)')
    .option('--client-key <path>', 'client key for mutual TLS (env RUNKEYS_CLIENT_KEY)')
    .version(packageVersion(import.meta.url), '--version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  registerServer(program, io);
  registerCollections(program, io);
  registerProviders(program, io);
  registerEnv(program, io);
  registerOAuthClients(program, io);
  registerAccounts(program, io);
  registerTokens(program, io);
  registerAudit(program, io);
  registerRuns(program, io);
  program.addCommand(agentCommand(io));
  registerScrubCommand(program);
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** How grpc-js words a failure to reach the server at all. */
const NOT_CONNECTED = new RegExp(
  [
    'No connection established',
    'Connection dropped',
    'Failed to connect',
    'Name resolution failed',
    'ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT',
  ].join('|'),
);

/** How OpenSSL, through grpc-js, words a failed TLS handshake. */
const TLS_FAILED = /SSL|certificate|handshake|alert|CERT_/;

/** Runs the CLI and returns its exit code; see docs/cli.md for the table of codes. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof UsageError || err instanceof OperatorError) {
      io.stderr.write(`runkeys: ${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
    if (isGrpcFailure(err)) {
      // grpc-js ends some connection errors with an empty "Resolution note: ".
      const details = err.details.replace(/[\s.]*Resolution note:\s*$/, '');
      // Only when the control plane itself could not be reached: an UNAVAILABLE it sends (a
      // provider it could not reach, its database away) has a message of its own.
      let hint = '';
      if (err.code === status.UNAVAILABLE && TLS_FAILED.test(details)) {
        hint =
          "\nrunkeys: the TLS handshake failed: --ca-cert must have signed the server's " +
          'certificate, and a server that requires client certificates needs --client-cert and ' +
          '--client-key';
      } else if (err.code === status.UNAVAILABLE && NOT_CONNECTED.test(details)) {
        hint =
          '\nrunkeys: is the control plane running at that address? (set RUNKEYS_ADDR or ' +
          '--addr; a server with TLS also needs --ca-cert)';
      }
      io.stderr.write(`runkeys: ${statusName(err.code)}: ${details}${hint}\n`);
      return EXIT_GRPC_BASE + err.code;
    }
    io.stderr.write(`runkeys: unexpected failure: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
