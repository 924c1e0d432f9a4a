import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../common/fs.js';

/**
 * The .env file: its directory 0700, the file 0600, every write atomic (temp file in the same
 * directory, fsync, rename) so a reader never sees half a file.
 */
export function writeEnvFile(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  writeFileAtomic(path, text, 0o600);
}

export function removeEnvFile(path: string): void {
  rmSync(path, { force: true });
}
