import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { CredentialFiles, placeFile } from '../../agent/credential-files.js';
import type { BundleFile } from '../../proto/gen/runkeys/v1/runs.js';
import { captureLog, WARN } from './log-capture.js';

const TOKEN = 'gho_filetoken0123456789abcdef';

let root: string;
let home: string;
let work: string;
let outside: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'runkeys-files-'));
  home = join(root, 'home');
  work = join(root, 'work');
  outside = join(root, 'outside');
  for (const d of [home, work, outside]) {
    mkdirSync(d);
    chmodSync(d, 0o755);
  }
});

const mode = (p: string) => statSync(p).mode & 0o777;

function file(path: string, content = `{"token":"${TOKEN}"}`): BundleFile {
  return {
    path,
    content,
    sensitive: true,
    account: 'github',
    secrets: [TOKEN],
    secretFingerprints: [],
  };
}

function writer() {
  const captured = captureLog();
  return { files: new CredentialFiles({ home, work }, captured.log), ...captured };
}

describe('placeFile()', () => {
  const bases = { home: '/h', work: '/w' };

  it('puts "~/x" under the home directory and "x" under the working directory', () => {
    expect(placeFile('~/.config/gh/hosts.json', bases)).toEqual({
      ok: true,
      file: '/h/.config/gh/hosts.json',
      base: '/h',
    });
    expect(placeFile('./creds/t.json', bases)).toEqual({
      ok: true,
      file: '/w/creds/t.json',
      base: '/w',
    });
  });

  it('refuses absolute paths, "~user", ".." segments and paths that name no file', () => {
    const refused = ['/etc/passwd', '~root/x', '../x', 'a/../../x', '~/../x', 'a/..', '~', '~/'];
    for (const path of [...refused, '', '.', './', 'a/']) {
      expect(placeFile(path, bases).ok, path).toBe(false);
    }
  });

  it('refuses "~/..." when there is no home directory', () => {
    expect(placeFile('~/x', { home: undefined, work: '/w' })).toEqual({
      ok: false,
      reason: 'no home directory to put "~/..." under',
    });
  });
});

describe('CredentialFiles', () => {
  it('writes the file 0600 and makes its missing directories 0700', () => {
    const { files } = writer();
    files.apply([file('~/.config/gh/hosts.json'), file('creds/token.json')]);
    const written = join(home, '.config', 'gh', 'hosts.json');
    expect(readFileSync(written, 'utf8')).toBe(`{"token":"${TOKEN}"}`);
    expect(mode(written)).toBe(0o600);
    expect(mode(join(home, '.config'))).toBe(0o700);
    expect(mode(join(home, '.config', 'gh'))).toBe(0o700);
    expect(mode(join(work, 'creds', 'token.json'))).toBe(0o600);
    expect(mode(join(work, 'creds'))).toBe(0o700);
  });

  it('leaves the mode of an existing directory as it is', () => {
    mkdirSync(join(home, '.config'));
    chmodSync(join(home, '.config'), 0o755);
    const { files } = writer();
    files.apply([file('~/.config/gh/hosts.json'), file('direct.json')]);
    expect(mode(join(home, '.config'))).toBe(0o755);
    expect(mode(join(home, '.config', 'gh'))).toBe(0o700);
    expect(mode(home)).toBe(0o755);
    expect(mode(work)).toBe(0o755);
  });

  it('refuses absolute and ".." paths, by path, and writes nothing for them', () => {
    const { files, lines } = writer();
    files.apply([file(join(outside, 'abs.json')), file('../outside/up.json'), file('~/../x')]);
    expect(existsSync(join(outside, 'abs.json'))).toBe(false);
    expect(existsSync(join(outside, 'up.json'))).toBe(false);
    expect(existsSync(join(root, 'x'))).toBe(false);
    const refused = lines.filter((l) => l.msg === 'credential file refused');
    expect(refused.map((l) => l.path)).toEqual([
      join(outside, 'abs.json'),
      '../outside/up.json',
      '~/../x',
    ]);
    expect(refused.every((l) => l.level === WARN && l.account === 'github')).toBe(true);
  });

  it('refuses a path that a symlink leads out of its directory, making no directory there', () => {
    symlinkSync(outside, join(home, 'link'));
    symlinkSync(outside, join(work, 'deep'));
    const { files, lines } = writer();
    files.apply([file('~/link/token.json'), file('deep/a/b/token.json')]);
    expect(existsSync(join(outside, 'token.json'))).toBe(false);
    expect(existsSync(join(outside, 'a'))).toBe(false);
    const refused = lines.filter((l) => l.msg === 'credential file refused');
    expect(refused.map((l) => [l.path, l.reason])).toEqual([
      ['~/link/token.json', 'a symlink leads out of its directory'],
      ['deep/a/b/token.json', 'a symlink leads out of its directory'],
    ]);
  });

  it('follows a symlink that stays inside its directory', () => {
    mkdirSync(join(home, 'real'));
    symlinkSync(join(home, 'real'), join(home, 'alias'));
    const { files } = writer();
    files.apply([file('~/alias/token.json')]);
    expect(existsSync(join(home, 'real', 'token.json'))).toBe(true);
  });

  it('replaces a symlink at the file itself rather than writing through it', () => {
    writeFileSync(join(outside, 'target'), 'untouched');
    symlinkSync(join(outside, 'target'), join(work, 'token.json'));
    const { files } = writer();
    files.apply([file('token.json')]);
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
    expect(readFileSync(join(work, 'token.json'), 'utf8')).toContain(TOKEN);
  });

  it('does not rewrite a file whose content is unchanged, and rewrites one that changed', () => {
    const { files } = writer();
    const path = join(home, 'token.json');
    files.apply([file('~/token.json')]);
    const before = statSync(path);
    files.apply([file('~/token.json')]);
    const same = statSync(path);
    expect(same.ino).toBe(before.ino);
    expect(same.mtimeMs).toBe(before.mtimeMs);
    files.apply([file('~/token.json', '{"token":"gho_rotated0123456789"}')]);
    expect(statSync(path).ino).not.toBe(before.ino);
    expect(readFileSync(path, 'utf8')).toBe('{"token":"gho_rotated0123456789"}');
  });

  it('rewrites a file it did not write itself, even with the same content, so it is 0600', () => {
    const path = join(work, 'token.json');
    writeFileSync(path, `{"token":"${TOKEN}"}`, { mode: 0o644 });
    chmodSync(path, 0o644);
    const { files } = writer();
    files.apply([file('token.json')]);
    expect(mode(path)).toBe(0o600);
  });

  it('removes a file a newer bundle no longer carries', () => {
    const { files, lines } = writer();
    files.apply([file('~/a.json'), file('b.json')]);
    files.apply([file('~/a.json')]);
    expect(existsSync(join(home, 'a.json'))).toBe(true);
    expect(existsSync(join(work, 'b.json'))).toBe(false);
    expect(lines.find((l) => l.msg === 'credential file removed')?.path).toBe('b.json');
  });

  it('removes every file it wrote on removeAll(), and none it did not', () => {
    writeFileSync(join(work, 'mine.txt'), 'the sandbox owns this');
    const { files } = writer();
    files.apply([file('~/.config/gh/hosts.json'), file('token.json')]);
    expect(files.removeAll().sort()).toEqual(['token.json', '~/.config/gh/hosts.json']);
    expect(existsSync(join(home, '.config', 'gh', 'hosts.json'))).toBe(false);
    expect(existsSync(join(work, 'token.json'))).toBe(false);
    expect(existsSync(join(work, 'mine.txt'))).toBe(true);
  });

  it('keeps going past a file that cannot be written', () => {
    mkdirSync(join(work, 'token.json'));
    const { files, lines } = writer();
    files.apply([file('token.json'), file('~/ok.json')]);
    expect(existsSync(join(home, 'ok.json'))).toBe(true);
    expect(lines.find((l) => l.path === 'token.json')?.reason).toBe('a directory is in the way');
  });

  it('never logs a file content or secret', () => {
    const { files, text } = writer();
    files.apply([file('~/a.json'), file('/abs.json'), file('b.json')]);
    files.apply([file('~/a.json', `{"token":"${TOKEN}x"}`)]);
    files.removeAll();
    expect(text()).not.toContain(TOKEN);
  });
});
