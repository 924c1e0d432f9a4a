import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

// The README's first command ends in `npm run demo`; its script must keep passing.
describe('npm run demo (scripts/demo.mjs)', () => {
  it('runs the whole flow and reports every check passed', () => {
    const res = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'demo.mjs')], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(res.stdout).not.toContain('BAD');
    expect(res.stdout).toContain('== demo passed');
    expect(res.status).toBe(0);
  }, 150_000);
});
