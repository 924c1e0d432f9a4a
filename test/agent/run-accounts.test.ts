import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutputStage, StageSecret } from '../../agent/output.js';
import { type AgentIo, runAgent } from '../../agent/run.js';
import { type Bundle, Layer } from '../../proto/gen/runkeys/v1/runs.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from './log-capture.js';
import { configFor, type StandIn, standIn } from './stand-in.js';

// runAgent against a stand-in control plane (no server/ code): the first bundle writes the
// credential file, a token near expiry makes the agent ask RefreshAccount with a statement
// the control plane opens with its own key, and revocation removes the .env and the file.

const RUN_ID = 'run_00000000000000aa';
const TOKEN = 'gho_runtoken0123456789abcdef';

let cp: StandIn | undefined;

afterEach(() => cp?.stop());

describe('runAgent() with connected accounts', () => {
  it('writes the file after registering its secret, asks for a refresh, removes all on revoke', async () => {
    const root = mkdtempSync(join(tmpdir(), 'runkeys-run-'));
    const home = join(root, 'home');
    const work = join(root, 'work');
    mkdirSync(home);
    mkdirSync(work);
    const bundle: Bundle = {
      version: 1,
      entries: [
        {
          name: 'GH_TOKEN',
          value: TOKEN,
          layer: Layer.LAYER_ACCOUNT,
          sensitive: true,
          fingerprint: '',
        },
      ],
      files: [
        {
          path: '~/.config/gh/hosts.json',
          content: `{"oauth_token":"${TOKEN}"}`,
          sensitive: true,
          account: 'github',
          secrets: [TOKEN],
          secretFingerprints: [],
        },
      ],
      unset: [],
      conflicts: [],
      resumeCredential: '',
      maxOfflineSeconds: 0,
      digest: '',
      // Due at once: the margin (5 s) is longer than the time left.
      accounts: [{ name: 'github', status: 'connected', expireTime: new Date(Date.now() + 3000) }],
    };
    const plane = await standIn({ runId: RUN_ID, bundle });
    cp = plane;
    const config = configFor(plane, RUN_ID, { work, home });
    const file = join(home, '.config', 'gh', 'hosts.json');
    const registered: StageSecret[][] = [];
    const existedAtUpdate: boolean[] = [];
    const stage: OutputStage = {
      stream: () => new PassThrough(),
      update(secrets) {
        existedAtUpdate.push(existsSync(file));
        registered.push([...secrets]);
      },
    };
    const io: AgentIo = {
      env: {},
      stdin: process.stdin,
      stdout: new PassThrough(),
      stderr: new PassThrough(),
    };
    const { log, text } = captureLog();

    const exited = runAgent(config, stage, io, log);
    await waitFor(() => plane.statements.length > 0, 10_000, 'a RefreshAccount ask');
    expect(existedAtUpdate).toEqual([false]);
    expect(registered).toEqual([
      [
        { name: 'GH_TOKEN', value: TOKEN, fingerprint: '' },
        { name: 'github', value: TOKEN, fingerprint: '' },
      ],
    ]);
    expect(readFileSync(file, 'utf8')).toContain(TOKEN);
    expect(plane.statements[0]?.runId).toBe(RUN_ID);
    expect(plane.statements[0]?.account).toBe('github');
    expect(Math.abs(Date.now() - (plane.statements[0]?.time?.getTime() ?? 0))).toBeLessThan(5000);

    plane.revoke();
    expect(await exited).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(config.envFile)).toBe(false);
    expect(text()).not.toContain(TOKEN);
    expect(text()).toContain('run revoked; removed the .env and credential files');
  });
});
