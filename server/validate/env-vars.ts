import { invalid } from '../errors.js';
import { quote } from './common.js';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_NAME = 256;
export const MAX_ENV_VALUE_BYTES = 64 * 1024;
export const MAX_ENV_VARS = 1000;

/** Names that change how a process loads code or finds programs. */
const GUARDED_NAMES = new Set([
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'LD_AUDIT',
  'NODE_OPTIONS',
  'PYTHONPATH',
  'PYTHONSTARTUP',
  'BASH_ENV',
  'ENV',
  'PATH',
  'HOME',
]);
const GUARDED_PREFIXES = ['DYLD_', 'RUNKEYS_'];

export function isGuardedName(name: string): boolean {
  return GUARDED_NAMES.has(name) || GUARDED_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Checks a variable name. A guarded name passes only with `allowOverride`; `overridable` is false
 * where the request has no such switch (OAuth token injection), so the message offers none.
 */
export function envName(
  field: string,
  name: string,
  allowOverride: boolean,
  overridable = true,
): string {
  if (name === '') throw invalid(`"${field}" is required`);

  if (name.length > MAX_ENV_NAME) {
    throw invalid(`"${field}" must be at most ${MAX_ENV_NAME} characters; got ${name.length}`);
  }

  if (!ENV_NAME.test(name)) {
    throw invalid(`"${field}" must match ${ENV_NAME.source}; got ${quote(name)}`);
  }

  if (isGuardedName(name) && !allowOverride) {
    const unless = overridable ? ' unless "allow_override" is set (--allow-override)' : '';
    throw invalid(
      `"${field}" must not name a variable that changes how the sandbox loads code or finds ` +
        `programs${unless}; got ${name}`,
    );
  }
  return name;
}

/** Checks a value without ever repeating it. */
export function envValue(value: string, sensitive: boolean): string {
  if (value === '' && sensitive) {
    throw invalid('"value" must not be empty for a sensitive variable');
  }

  if (value.includes('\0')) throw invalid('"value" must not contain NUL bytes');

  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_ENV_VALUE_BYTES) {
    throw invalid(`"value" must be at most ${MAX_ENV_VALUE_BYTES} bytes of UTF-8; got ${bytes}`);
  }
  return value;
}
