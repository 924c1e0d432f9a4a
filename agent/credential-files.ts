import { lstatSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../common/fs.js';
import type { BundleFile } from '../proto/gen/runkeys/v1/runs.js';

/** The two directories a bundle's file paths are relative to. */
export interface FileBases {
  /** Where `~/...` goes: the sandbox user's home directory; undefined when it has none. */
  home: string | undefined;
  /** Where a relative path goes: the agent's working directory at start. */
  work: string;
}

export type FilePlace = { ok: true; file: string; base: string } | { ok: false; reason: string };

/** True when `path` is `base` itself (with `self`) or lies below it. */
function within(base: string, path: string, self: boolean): boolean {
  const rel = relative(base, path);
  if (rel === '') return self;
  return rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
}

/**
 * Where a bundle's file path points, by text alone: `~/x` under the home directory, `x` under
 * the working directory. Absolute paths, `~user/...`, `..` segments and paths that name no
 * file below their base are refused.
 */
export function placeFile(path: string, bases: FileBases): FilePlace {
  if (path === '' || path.endsWith('/') || path.includes('\0')) {
    return { ok: false, reason: '"path" must name a file' };
  }

  if (isAbsolute(path)) {
    return { ok: false, reason: '"path" must be "~/..." or relative; got an absolute path' };
  }

  const home = path.startsWith('~/');
  if (path.startsWith('~') && !home) {
    return { ok: false, reason: '"path" may start with "~/" only, not "~user"' };
  }

  const rest = home ? path.slice(2) : path;
  if (rest.split('/').includes('..')) {
    return { ok: false, reason: '"path" must not hold a ".." segment' };
  }

  const base = home ? bases.home : bases.work;
  if (base === undefined || base === '') {
    return { ok: false, reason: 'no home directory to put "~/..." under' };
  }

  const file = resolve(base, rest);
  if (!within(base, file, false)) {
    return { ok: false, reason: '"path" must name a file below its directory' };
  }
  return { ok: true, file, base: resolve(base) };
}

interface Written {
  path: string;
  account: string;
}

/**
 * The credential files of a run (tokens of connected accounts, in the form their tools read):
 * 1. place each path under its base (placeFile()), refusing what would land outside;
 * 2. find the deepest part of the file's directory that exists and check that its real path
 *    is inside the base's real path, so no symlink on the way leads out of it;
 * 3. make the missing directories 0700, leaving existing ones as they are, and check the
 *    directory's real path again;
 * 4. write the file atomically with mode 0600, unless the agent wrote it before and it still
 *    holds this content;
 * 5. remove the files the agent wrote that the bundle no longer carries.
 * A refused or failed file is logged by path and skipped; the others still go ahead.
 */
export class CredentialFiles {
  /** Files the agent wrote, by absolute path. */
  private readonly written = new Map<string, Written>();

  constructor(
    private readonly bases: FileBases,
    private readonly log: Logger,
  ) {}

  /** Brings the files in line with a bundle's. */
  apply(files: readonly BundleFile[]): void {
    const kept = new Set<string>();
    for (const f of files) {
      // 1.
      const place = placeFile(f.path, this.bases);
      if (!place.ok) {
        this.refuse(f, place.reason);
        continue;
      }

      if (kept.has(place.file)) {
        this.log.warn(
          { path: f.path, account: f.account },
          'two files at one path: kept the first',
        );
        continue;
      }

      kept.add(place.file);
      this.write(f, place.file, place.base);
    }
    // 5.
    for (const [file, w] of this.written) {
      if (!kept.has(file)) this.remove(file, w, 'credential file removed');
    }
  }

  /** Removes every file the agent wrote; returns their paths as the bundles gave them. */
  removeAll(): string[] {
    const paths: string[] = [];
    for (const [file, w] of this.written) {
      this.remove(file, w);
      paths.push(w.path);
    }
    return paths;
  }

  private write(f: BundleFile, file: string, base: string): void {
    const dir = dirname(file);
    try {
      const realBase = realpathSync(base);
      // 2.
      if (!within(realBase, realpathSync(deepestExisting(dir, base)), true)) {
        this.refuse(f, 'a symlink leads out of its directory');
        return;
      }

      // 3.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!within(realBase, realpathSync(dir), true)) {
        this.refuse(f, 'a symlink leads out of its directory');
        return;
      }

      // 4.
      const content = Buffer.from(f.content, 'utf8');
      const there = lstatSync(file, { throwIfNoEntry: false });
      if (there?.isDirectory()) {
        this.refuse(f, 'a directory is in the way');
        return;
      }

      if (this.written.has(file) && there?.isFile() && readFileSync(file).equals(content)) return;
      // A symlink at the file itself is replaced, never written through: rename swaps the link.
      writeFileAtomic(file, content, 0o600);
      this.written.set(file, { path: f.path, account: f.account });
      this.log.info({ path: f.path, account: f.account, file }, 'credential file written');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.log.warn({ path: f.path, account: f.account, code }, 'credential file not written');
    }
  }

  private refuse(f: BundleFile, reason: string): void {
    this.log.warn({ path: f.path, account: f.account, reason }, 'credential file refused');
  }

  private remove(file: string, w: Written, msg?: string): void {
    try {
      rmSync(file, { force: true });
      this.written.delete(file);
      if (msg !== undefined) this.log.info({ path: w.path, account: w.account }, msg);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.log.warn({ path: w.path, account: w.account, code }, 'credential file not removed');
    }
  }
}

/**
 * The deepest of `dir` and its parents, up to `base`, that exists as anything: a dangling
 * symlink counts too, and then fails realpath.
 */
function deepestExisting(dir: string, base: string): string {
  let d = dir;
  while (d !== base && lstatSync(d, { throwIfNoEntry: false }) === undefined) d = dirname(d);
  return d;
}
