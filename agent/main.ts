import net from 'node:net';
import { dropTlsServernameWarning } from '../common/tls-servername-warning.js';
import { handleClosedPipes, keepRunningOnClosedPipes } from './closed-pipes.js';
import { agentCommand } from './command.js';

// The one-file agent (dist/runkeys-agent.cjs): `node runkeys-agent.cjs [flags] -- CMD ...`.

// Start-up time matters here. net.isIPv6 compiles a large regular expression on first use
// (over 10 ms on a small machine) and grpc-js calls it for every address, IPv4 ones too; a
// string without a colon is never an IPv6 address, so those skip the expression.
const isIPv6 = net.isIPv6;
net.isIPv6 = (input: string) => input.includes(':') && isIPv6(input);

// The agent drops output nobody reads any more, and keeps its command and files managed.
keepRunningOnClosedPipes();
handleClosedPipes([process.stdout, process.stderr], () => {});
dropTlsServernameWarning();

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
