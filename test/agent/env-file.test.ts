import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeEnvFile } from '../../agent/env-file.js';

let cwd: string;
let dir: string;

beforeEach(() => {
  cwd = process.cwd();
  dir = mkdtempSync(join(tmpdir(), 'runkeys-envfile-'));
  chmodSync(dir, 0o755);
  process.chdir(dir);
});

afterEach(() => {
  process.chdir(cwd);
});

const mode = (p: string) => statSync(p).mode & 0o777;

describe('writeEnvFile()', () => {
  it('makes its own directory 0700 and the file 0600', () => {
    writeEnvFile(join(dir, 'env', '.env'), "A='1'\n");
    expect(mode(join(dir, 'env'))).toBe(0o700);
    expect(mode(join(dir, 'env', '.env'))).toBe(0o600);
    expect(readFileSync(join(dir, 'env', '.env'), 'utf8')).toBe("A='1'\n");
  });

  it('narrows an existing directory of its own to 0700', () => {
    mkdirSync(join(dir, 'secrets'), { mode: 0o755 });
    chmodSync(join(dir, 'secrets'), 0o755);
    writeEnvFile(join(dir, 'secrets', '.env'), "A='1'\n");
    expect(mode(join(dir, 'secrets'))).toBe(0o700);
  });

  it('leaves the working directory as it is when the .env goes straight into it', () => {
    writeEnvFile(join(dir, '.env'), "A='1'\n");
    expect(mode(dir)).toBe(0o755);
    expect(mode(join(dir, '.env'))).toBe(0o600);
  });
});
