import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, spawnAgent, stopAgents } from '../helpers/agent.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';

// runkeys agent --trajectory SRC:DST follows the JSON Lines file the command appends to and
// writes a scrubbed copy, joining streamed text deltas so a value split across records is
// caught.

const TOKEN = 'tok-traj-secret-7777';

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-traj-0123456789' });
  await cp.setEnv('acme', 'API_TOKEN', TOKEN);
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

const delta = (text: string) =>
  JSON.stringify({
    type: 'stream_event',
    event: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
  });

describe('runkeys agent --trajectory', () => {
  it('writes a scrubbed copy as the file grows, with a value split across two deltas', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const lines = [
      delta('the token is tok-traj-'),
      delta('secret-7777, done'),
      JSON.stringify({ type: 'result', result: `said ${TOKEN}` }),
    ];
    const script =
      'const fs=require("fs"); const lines=' +
      JSON.stringify(lines) +
      '; let i=0; const t=setInterval(()=>{ fs.appendFileSync("traj.jsonl", lines[i++]+"\\n");' +
      ' if(i===lines.length){ clearInterval(t); setTimeout(()=>{}, 300); } }, 150);';
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: sandboxVariables(run, server.address),
      flags: ['--trajectory', 'traj.jsonl:traj.clean.jsonl'],
      command: [process.execPath, '-e', script],
    });
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    const clean = readFileSync(join(sandbox.dir, 'traj.clean.jsonl'), 'utf8');
    expect(clean).not.toContain('tok-traj-');
    expect(clean).not.toContain('secret-7777');
    const records = clean
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(3);
    const text = records
      .slice(0, 2)
      .map((r) => r.event.delta.text)
      .join('');
    expect(text).toBe('the token is [REDACTED:API_TOKEN], done');
    expect(records[2].result).toBe('said [REDACTED:API_TOKEN]');
  });

  it('refuses a --trajectory that is not SRC:DST with exit 64', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: sandboxVariables(run, server.address),
      flags: ['--trajectory', 'only-a-source'],
    });
    const exit = await agent.exited;
    expect(exit.code).toBe(64);
    expect(agent.stderr()).toContain('runkeys agent: --trajectory must be SRC:DST\n');
  });
});
