import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The runkeys package's root directory, found by walking up from a module's own location: the
 * same code runs from its TypeScript source and from dist/, at different depths.
 */
export function packageRoot(moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the runkeys package root was not found');
    dir = parent;
  }
  return dir;
}

export function packageVersion(moduleUrl: string): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(moduleUrl), 'package.json'), 'utf8'));
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
