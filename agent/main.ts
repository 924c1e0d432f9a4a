import { agentCommand } from './command.js';

// The one-file agent (dist/runkeys-agent.cjs): `node runkeys-agent.cjs [flags] -- CMD ...`.
const io = {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
};
agentCommand(io)
  .name('runkeys-agent')
  .parseAsync(process.argv.slice(2), { from: 'user' })
  .catch((err: unknown) => {
    process.stderr.write(`runkeys agent: unexpected failure: ${(err as Error).message}\n`);
    process.exitCode = 70;
  });
