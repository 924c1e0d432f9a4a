import { chmodSync, mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, parse, resolve } from 'node:path';
import { writeFileAtomic } from '../common/fs.js';

/**
 * Directories the agent never narrows to 0700, even when the .env is put straight into one:
 * the working directory, the home directory, the temporary directory and the root.
 */
function shared(dir: string): boolean {
  const real = realpathSync(dir);
  const keep = [process.cwd(), homedir(), tmpdir(), parse(real).root].map((d) => {
    try {
      return realpathSync(d);
    } catch {
      // A directory that does not exist cannot be this one.
      return resolve(d);
    }
  });
  return keep.includes(real);
}

/**
 * The .env file: its directory 0700 (made so, or narrowed unless it is one the sandbox
 * shares, such as the working directory), the file 0600, every write atomic (temp file in the
 * same directory, fsync, rename) so a reader never sees half a file.
 */
export function writeEnvFile(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0 && !shared(dir)) chmodSync(dir, 0o700);
  writeFileAtomic(path, text, 0o600);
}

export function removeEnvFile(path: string): void {
  rmSync(path, { force: true });
}
