import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_FILE, makeSandbox } from '../helpers/agent.js';
import { CLI, cliEnv } from '../helpers/cli.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';

// A reader that goes away early (`runkeys env list | head -1`): admin commands end quietly
// with success; the agent drops the output nobody reads and still runs its command to the end.

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-pipe-0123456789abcdef' });
}, 30_000);

afterAll(async () => {
  cp.close();
  await server.kill();
});

/** Runs node with args, its stdout closed by the reader at once; resolves to code and stderr. */
function withStdoutClosed(
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('output to a closed pipe', () => {
  it('an admin command ends quietly with success', async () => {
    const res = await withStdoutClosed(
      [CLI, 'collections', 'list'],
      cliEnv(server.address, server.rootToken),
    );
    expect(res).toEqual({ code: 0, stderr: '' });
  });

  it('the agent keeps running its command and exits with its code', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const script =
      'const line = "x".repeat(1023) + "\\n";' +
      'let n = 0; const t = setInterval(() => { for (let i = 0; i < 64; i++) process.stdout.write(line);' +
      ' if (++n === 32) { clearInterval(t); process.exitCode = 3; } }, 5);';
    const res = await withStdoutClosed(
      [AGENT_FILE, '--', process.execPath, '-e', script],
      sandboxVariables(run, server.address),
      sandbox.dir,
    );
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).not.toContain('unexpected failure');
    expect(res.stderr).not.toContain('EPIPE');
  });
});
