import type { CliIo } from './context.js';
import { runCli } from './run.js';

const io: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};

runCli(process.argv.slice(2), io).then((code) => {
  // A command that sets its own exit code (the agent) returns 0 here.
  if (code !== 0) process.exitCode = code;
});
