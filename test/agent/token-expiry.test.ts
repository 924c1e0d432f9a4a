import { describe, expect, it } from 'vitest';
import { liveView } from '../../agent/token-expiry.js';
import { type Bundle, Layer } from '../../proto/gen/runkeys/v1/runs.js';

const NOW = 1_700_000_000_000;
const at = (ms: number) => new Date(NOW + ms);

function bundle(): Bundle {
  return {
    version: 1,
    entries: [
      {
        name: 'GH_TOKEN',
        value: 'a',
        layer: Layer.LAYER_ACCOUNT,
        sensitive: true,
        fingerprint: '',
        expireTime: at(-1),
      },
      {
        name: 'SLACK_TOKEN',
        value: 'b',
        layer: Layer.LAYER_ACCOUNT,
        sensitive: true,
        fingerprint: '',
        expireTime: at(500),
      },
      { name: 'REGION', value: 'c', layer: Layer.LAYER_ENV, sensitive: false, fingerprint: '' },
    ],
    files: [
      {
        path: '~/gh.json',
        content: '{}',
        sensitive: true,
        account: 'github',
        secrets: [],
        secretFingerprints: [],
      },
      {
        path: '~/slack.json',
        content: '{}',
        sensitive: true,
        account: 'slack',
        secrets: [],
        secretFingerprints: [],
      },
      {
        path: 'plain.txt',
        content: 'x',
        sensitive: false,
        account: '',
        secrets: [],
        secretFingerprints: [],
      },
    ],
    unset: [],
    conflicts: [],
    resumeCredential: '',
    maxOfflineSeconds: 0,
    digest: '',
    accounts: [
      { name: 'github', status: 'connected', expireTime: at(0) },
      { name: 'slack', status: 'connected', expireTime: at(300) },
      { name: 'jira', status: 'connected' },
    ],
  };
}

describe('liveView()', () => {
  it('leaves out entries and files whose token expiry has passed, and names them', () => {
    const view = liveView(bundle(), NOW);
    expect(view.entries.map((e) => e.name)).toEqual(['SLACK_TOKEN', 'REGION']);
    expect(view.files.map((f) => f.path)).toEqual(['~/slack.json', 'plain.txt']);
    expect(view.expiredVariables).toEqual(['GH_TOKEN']);
    expect(view.expiredAccounts).toEqual(['github']);
  });

  it('gives the next expiry still to come', () => {
    expect(liveView(bundle(), NOW).nextExpiry).toBe(NOW + 300);
    expect(liveView(bundle(), NOW + 300).nextExpiry).toBe(NOW + 500);
    expect(liveView(bundle(), NOW + 500).nextExpiry).toBeUndefined();
  });

  it('keeps everything without an expiry', () => {
    const b = bundle();
    for (const e of b.entries) e.expireTime = undefined;
    for (const a of b.accounts) a.expireTime = undefined;
    const view = liveView(b, NOW);
    expect([view.entries.length, view.files.length, view.nextExpiry]).toEqual([3, 3, undefined]);
  });
});
