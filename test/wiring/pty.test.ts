import pty from '@lydell/node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox } from '../helpers/agent.js';
import { CLI } from '../helpers/cli.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';

// When the agent runs on a terminal, the command gets a pseudo-terminal of its own (so colours
// and line editing survive) and the terminal stream is scrubbed.

const TOKEN = 'tok-pty-secret-31337';

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-pty-0123456789' });
  await cp.setEnv('acme', 'API_TOKEN', TOKEN);
});

afterAll(async () => {
  cp.close();
  await server.kill();
});

describe('runkeys agent on a terminal', () => {
  it('gives the command a terminal and scrubs what it shows there', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const script =
      'process.stdout.write("tty " + process.stdout.isTTY + " " + process.stdin.isTTY + "\\n");' +
      'console.log("\\x1b[31m" + process.env.API_TOKEN + "\\x1b[0m");';
    const term = pty.spawn(
      process.execPath,
      [CLI, 'agent', '--log-level', 'warn', '--', process.execPath, '-e', script],
      {
        cols: 100,
        rows: 30,
        cwd: sandbox.dir,
        env: { PATH: process.env.PATH ?? '', ...sandboxVariables(run, server.address) },
      },
    );
    let screen = '';
    term.onData((d) => {
      screen += d;
    });
    const code = await new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
    expect(code).toBe(0);
    expect(screen).toContain('tty true true');
    expect(screen).toContain('\x1b[31m[REDACTED:API_TOKEN]\x1b[0m');
    expect(screen).not.toContain(TOKEN);
  });
});
