import { handleClosedPipes } from '../agent/closed-pipes.js';
import { dropTlsServernameWarning } from '../common/tls-servername-warning.js';
import type { CliIo } from './context.js';
import { runCli } from './run.js';

const io: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};

// A reader that stops early (`runkeys env list | head -1`) has what it wanted: end quietly, with
// success. `runkeys agent` keeps running instead (agent/closed-pipes.ts).
handleClosedPipes([process.stdout], () => process.exit(0));
dropTlsServernameWarning();

runCli(process.argv.slice(2), io).then((code) => {
  // A command that sets its own exit code (the agent) returns 0 here.
  if (code !== 0) process.exitCode = code;
});
