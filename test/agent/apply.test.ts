import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { BundleApplier } from '../../agent/apply.js';
import { bundleSecrets } from '../../agent/bundle-secrets.js';
import type { OutputStage, StageSecret } from '../../agent/output.js';
import { type Bundle, type BundleFile, Layer } from '../../proto/gen/runkeys/v1/runs.js';
import { captureLog, WARN } from './log-capture.js';

const ENV_TOKEN = 'gho_envtoken0123456789abcdef';
const FILE_TOKEN = 'gho_filetoken0123456789abcdef';
const NEXT_TOKEN = 'gho_nexttoken0123456789abcdef';

let home: string;
let work: string;
let envFile: string;

beforeEach(() => {
  const root = mkdtempSync(join(tmpdir(), 'runkeys-apply-'));
  home = join(root, 'home');
  work = join(root, 'work');
  mkdirSync(home);
  mkdirSync(work);
  envFile = join(work, 'env', '.env');
});

function credentialFile(path: string, token: string): BundleFile {
  return {
    path,
    content: `{"oauth_token":"${token}"}`,
    sensitive: true,
    account: 'github',
    secrets: [token],
    secretFingerprints: [`hmac:of-${path}`],
  };
}

function bundle(version: number, files: BundleFile[]): Bundle {
  return {
    version,
    entries: [
      {
        name: 'GH_TOKEN',
        value: ENV_TOKEN,
        layer: Layer.LAYER_ACCOUNT,
        sensitive: true,
        fingerprint: 'hmac:of-env',
      },
      {
        name: 'REGION',
        value: 'eu-west-1-plain',
        layer: Layer.LAYER_ENV,
        sensitive: false,
        fingerprint: '',
      },
    ],
    files,
    unset: [],
    conflicts: [],
    resumeCredential: '',
    maxOfflineSeconds: 0,
    digest: '',
    accounts: [{ name: 'github', status: 'connected' }],
  };
}

/** An output stage that records, at each update, what is already on disk. */
function probingStage(paths: () => string[]) {
  const updates: { secrets: StageSecret[]; existing: string[] }[] = [];
  const stage: OutputStage = {
    stream: () => new PassThrough(),
    update(secrets) {
      updates.push({ secrets: [...secrets], existing: paths().filter((p) => existsSync(p)) });
    },
  };
  return { stage, updates };
}

describe('bundleSecrets()', () => {
  it('gives sensitive entries by name and file secrets by account, and no plain value', () => {
    const b = bundle(1, [credentialFile('~/a.json', FILE_TOKEN)]);
    b.files.push({ ...credentialFile('b.json', NEXT_TOKEN), account: '' });
    // Each with the fingerprint its leak reports name it by.
    expect(bundleSecrets(b)).toEqual([
      { name: 'GH_TOKEN', value: ENV_TOKEN, fingerprint: 'hmac:of-env' },
      { name: 'github', value: FILE_TOKEN, fingerprint: 'hmac:of-~/a.json' },
      { name: 'b.json', value: NEXT_TOKEN, fingerprint: 'hmac:of-b.json' },
    ]);
  });
});

describe('BundleApplier', () => {
  it('registers every secret with the output stage before the .env or any file exists', () => {
    const first = join(home, '.config', 'gh', 'hosts.json');
    const second = join(work, 'second.json');
    const { stage, updates } = probingStage(() => [envFile, first, second]);
    const applier = new BundleApplier(
      { envFile, homeDir: home, workDir: work, command: [] },
      stage,
      captureLog().log,
    );

    applier.apply(bundle(1, [credentialFile('~/.config/gh/hosts.json', FILE_TOKEN)]));
    expect(updates[0]?.existing).toEqual([]);
    expect(updates[0]?.secrets.map((s) => s.value)).toEqual([ENV_TOKEN, FILE_TOKEN]);
    expect(existsSync(envFile) && existsSync(first)).toBe(true);

    applier.apply(
      bundle(2, [
        credentialFile('~/.config/gh/hosts.json', FILE_TOKEN),
        credentialFile('second.json', NEXT_TOKEN),
      ]),
    );
    expect(updates[1]?.existing).toEqual([envFile, first]);
    expect(updates[1]?.secrets.map((s) => s.value)).toContain(NEXT_TOKEN);
    expect(readFileSync(second, 'utf8')).toContain(NEXT_TOKEN);
  });

  it.each([
    [['node', 'run.js'], 'values no .env quoting carries exactly: environment only'],
    [
      [],
      'values no .env quoting carries exactly: left out (sidecar mode has no command to pass ' +
        'them to)',
    ],
  ])('names a value the .env cannot carry by what becomes of it (command %j)', (command, msg) => {
    const { stage } = probingStage(() => []);
    const { log, lines } = captureLog();
    const applier = new BundleApplier(
      { envFile, homeDir: home, workDir: work, command },
      stage,
      log,
    );
    const b = bundle(1, []);
    b.entries.push({
      name: 'TWO_LINES',
      value: 'first\rsecond-CANARY',
      layer: Layer.LAYER_ENV,
      sensitive: true,
      fingerprint: 'hmac:of-two-lines',
    });
    applier.apply(b);
    expect(lines.find((l) => l.level === WARN)).toMatchObject({ msg, variables: ['TWO_LINES'] });
    expect(readFileSync(envFile, 'utf8')).not.toContain('CANARY');
  });

  it('removes the .env and every credential file on removeAll()', () => {
    const { stage } = probingStage(() => []);
    const applier = new BundleApplier(
      { envFile, homeDir: home, workDir: work, command: [] },
      stage,
      captureLog().log,
    );
    applier.apply(
      bundle(1, [credentialFile('~/a.json', FILE_TOKEN), credentialFile('b.json', NEXT_TOKEN)]),
    );
    expect(applier.removeAll().sort()).toEqual(['b.json', '~/a.json']);
    expect(existsSync(envFile)).toBe(false);
    expect(existsSync(join(home, 'a.json'))).toBe(false);
    expect(existsSync(join(work, 'b.json'))).toBe(false);
  });
});

describe('BundleApplier.restore()', () => {
  it('writes the .env and the files again after removeAll(), less what expired meanwhile', () => {
    let now = 1_000;
    const { stage } = probingStage(() => []);
    const config = { envFile, homeDir: home, workDir: work, command: [] };
    const applier = new BundleApplier(config, stage, captureLog().log, { now: () => now });
    const b = bundle(1, [
      credentialFile('~/a.json', FILE_TOKEN),
      credentialFile('b.json', NEXT_TOKEN),
    ]);
    b.files[1]!.account = 'jira';
    b.accounts = [
      { name: 'github', status: 'connected', expireTime: new Date(5_000) },
      { name: 'jira', status: 'connected', expireTime: new Date(60_000) },
    ];
    b.entries[0]!.expireTime = new Date(5_000);
    applier.apply(b);
    applier.removeAll();
    applier.restore();
    expect(readFileSync(envFile, 'utf8')).toContain(ENV_TOKEN);
    expect(existsSync(join(home, 'a.json'))).toBe(true);

    applier.removeAll();
    now = 6_000;
    applier.restore();
    expect(readFileSync(envFile, 'utf8')).not.toContain(ENV_TOKEN);
    expect(readFileSync(envFile, 'utf8')).toContain('REGION');
    expect(existsSync(join(home, 'a.json'))).toBe(false);
    expect(readFileSync(join(work, 'b.json'), 'utf8')).toContain(NEXT_TOKEN);
    applier.stop();
  });

  it('does nothing unless removeAll() came first', () => {
    const { stage } = probingStage(() => []);
    const applier = new BundleApplier(
      { envFile, homeDir: home, workDir: work, command: [] },
      stage,
      captureLog().log,
    );
    applier.restore();
    expect(existsSync(envFile)).toBe(false);
  });
});
