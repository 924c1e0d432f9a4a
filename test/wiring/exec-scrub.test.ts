import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, spawnAgent, stopAgents } from '../helpers/agent.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/wait.js';

// The agent's output stage: what the command prints, what the agent logs, and the trajectory
// the command writes all reach the outside with every sensitive value masked.

const KEY = 'sk-ant-wire-0123456789abcdef';
const TOKEN = 'tok-wire-secret-4242';
const ROTATED = 'tok-wire-rotated-9999';
const PLAIN = 'https://plain.example/config';

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: KEY });
  await cp.setEnv('acme', 'API_TOKEN', TOKEN);
  await cp.setEnv('acme', 'CONFIG_URL', PLAIN, false);
  await cp.setEnv('acme', 'TINY', 'tiny');
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

async function runWith(command: string[], flags: string[] = []) {
  const run = await cp.createRun('acme', 'anthropic');
  const sandbox = makeSandbox();
  const agent = spawnAgent({
    cwd: sandbox.dir,
    env: sandboxVariables(run, server.address),
    flags,
    command,
  });
  const exit = await agent.exited;
  return { sandbox, exit, stdout: agent.stdout(), stderr: agent.stderr() };
}

const node = (script: string) => [process.execPath, '-e', script];

describe('runkeys agent -- CMD (output scrubbing)', () => {
  it('masks values in stdout and stderr, raw, JSON-escaped and base64', async () => {
    const out = await runWith(
      node(
        'const e=process.env;' +
          'console.log("key", e.ANTHROPIC_API_KEY);' +
          'console.log(JSON.stringify({t: e.API_TOKEN}));' +
          'console.error("b64", Buffer.from(e.API_TOKEN).toString("base64"));' +
          'console.log("plain", e.CONFIG_URL, "tiny", e.TINY);',
      ),
    );
    expect(out.exit.code).toBe(0);
    expect(out.stdout).toContain('key [REDACTED:ANTHROPIC_API_KEY]\n');
    expect(out.stdout).toContain('{"t":"[REDACTED:API_TOKEN]"}\n');
    expect(out.stdout).toContain(`plain ${PLAIN} tiny tiny\n`);
    expect(out.stderr).toContain('b64 [REDACTED:API_TOKEN]');
    for (const secret of [KEY, TOKEN, Buffer.from(TOKEN).toString('base64').slice(0, 20)]) {
      expect(out.stdout + out.stderr).not.toContain(secret);
    }
  });

  it('masks a value the command writes a byte at a time, in separate writes', async () => {
    const out = await runWith(
      node(
        'const v=process.env.API_TOKEN; let i=0;' +
          'const t=setInterval(()=>{ if(i<v.length) process.stdout.write(v[i++]);' +
          ' else { clearInterval(t); process.stdout.write("\\n"); } }, 5);',
      ),
    );
    expect(out.stdout).toBe('[REDACTED:API_TOKEN]\n');
  });

  it('keeps the order of each stream', async () => {
    const out = await runWith(
      node('for (let i = 0; i < 200; i++) { console.log("o" + i); console.error("e" + i); }'),
    );
    const lines = (s: string, p: string) => s.split('\n').filter((l) => l.startsWith(p));
    expect(lines(out.stdout, 'o')).toEqual(Array.from({ length: 200 }, (_, i) => `o${i}`));
    expect(lines(out.stderr, 'e')).toEqual(Array.from({ length: 200 }, (_, i) => `e${i}`));
  });

  it('warns by name, never by value, about a value too short to scrub', async () => {
    const out = await runWith(node('0'));
    const warning = out.stderr.split('\n').find((l) => l.includes('value not scrubbed'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ variable: 'TINY' });
    expect(warning).not.toContain('"tiny"');
  });

  it('uses the marker given with --marker', async () => {
    const out = await runWith(node('console.log(process.env.API_TOKEN)'), [
      '--marker',
      '***{name}***',
    ]);
    expect(out.stdout).toBe('***API_TOKEN***\n');
  });

  it('masks a value that changed while the command runs, from then on', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const go = join(sandbox.dir, 'go');
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: sandboxVariables(run, server.address),
      command: node(
        'const fs=require("fs");' +
          `const t=setInterval(()=>{ if(!fs.existsSync(${JSON.stringify(go)})) return; clearInterval(t);` +
          ' const env=require("util").parseEnv(fs.readFileSync("env/.env","utf8"));' +
          ' console.log("new", env.API_TOKEN); }, 20);',
      ),
    });
    await waitFor(() => readIfEnv(sandbox.envFile)?.includes(TOKEN) === true, 10_000, '.env');
    await cp.setEnv('acme', 'API_TOKEN', ROTATED);
    await waitFor(() => readIfEnv(sandbox.envFile)?.includes(ROTATED) === true, 5000, 'update');
    writeFileSync(go, '');
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    expect(agent.stdout()).toBe('new [REDACTED:API_TOKEN]\n');
    await cp.setEnv('acme', 'API_TOKEN', TOKEN);
  });
});

function readIfEnv(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
