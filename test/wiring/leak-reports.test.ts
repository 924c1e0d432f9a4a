import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentEntry, makeSandbox, spawnAgent, stopAgents } from '../helpers/agent.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { call } from '../helpers/server.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';

// What the agent tells the control plane about a run: a receipt for each bundle it applied,
// and what its scrubber replaced, by value and stream, counted and never the value itself.

const TOKEN = 'tok-leak-report-secret-31337';
const KEY = 'sk-ant-leak-0123456789abcdef';
const PRINTS = 1_000_000;

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: KEY });
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

/**
 * Prints the token PRINTS times on stdout (in large writes), once on stderr, and splits it
 * across two trajectory deltas; then exits.
 */
const SCRIPT = `
const fs = require('fs');
const t = process.env.API_TOKEN;
const block = (t + '\\n').repeat(10000);
for (let i = 0; i < ${PRINTS} / 10000; i++) fs.writeSync(1, block);
process.stderr.write('oops ' + t + '\\n');
fs.appendFileSync('traj.jsonl', ${JSON.stringify(delta('the token is '))}.replace('is ', 'is ' + t.slice(0, 9)) + '\\n');
fs.appendFileSync('traj.jsonl', ${JSON.stringify(delta(', done'))}.replace('"text":"', '"text":"' + t.slice(9)) + '\\n');
setTimeout(() => {}, 400);
`;

describe.each<AgentEntry>(['one-file', 'cli'])('leak reports and receipts (%s)', (entry) => {
  it('counts a million prints as one counter, and acknowledges the bundle', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const runId = run.run!.id;
    const sandbox = makeSandbox();
    const agent = spawnAgent({
      entry,
      cwd: sandbox.dir,
      env: sandboxVariables(run, server.address),
      flags: ['--trajectory', 'traj.jsonl:traj.clean.jsonl'],
      command: [process.execPath, '-e', SCRIPT],
    });
    const exit = await agent.exited;
    expect(exit.code, agent.stderr()).toBe(0);
    expect(agent.stdout()).not.toContain(TOKEN);
    expect(
      agent
        .stdout()
        .split('\n')
        .filter((l) => l === '[REDACTED:API_TOKEN]'),
    ).toHaveLength(PRINTS);
    expect(readFileSync(join(sandbox.dir, 'traj.clean.jsonl'), 'utf8')).not.toContain(TOKEN);

    // The agent sends its last report before it exits.
    const got = await cp.getRun('acme', runId);
    const fp = (await cp.auditOf('acme', 'API_TOKEN')).at(-1)!.fingerprint;
    expect(got.leaks.map((l) => [l.name, l.stream, l.count, l.fingerprint])).toEqual([
      ['API_TOKEN', 'stderr', 1, fp],
      ['API_TOKEN', 'stdout', PRINTS, fp],
      ['API_TOKEN', 'trajectory', 1, fp],
    ]);
    const events = await cp.auditOf('acme', runId);
    const leaks = events.filter((e) => e.action === 'run.leak');
    expect(leaks.map((e) => e.details.stream).sort()).toEqual(['stderr', 'stdout', 'trajectory']);
    expect(events.length).toBeLessThan(20);

    const receipts = await call(
      cp.runs.listReceipts.bind(cp.runs),
      {
        collection: 'acme',
        runId,
        name: '',
        fingerprint: '',
        version: 0,
        pageSize: 0,
        pageToken: '',
      },
      cp.token,
    );
    expect(receipts.receipts).toHaveLength(1);
    expect(receipts.receipts[0]).toMatchObject({
      runId,
      version: got.deliveredVersion,
      envFileWritten: true,
      commandStarted: true,
    });
    expect(got.appliedVersion).toBe(got.deliveredVersion);

    // Nothing of it carries the value: not the audit log, not the server's log.
    expect(JSON.stringify(events)).not.toContain(TOKEN);
    expect(server.log()).not.toContain(TOKEN);
    expect(agent.stderr()).not.toContain(TOKEN);
  });
});
