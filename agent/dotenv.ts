import { parseEnv } from 'node:util';
import dotenv from 'dotenv';

export interface EnvEntry {
  name: string;
  value: string;
}

export interface DotenvText {
  text: string;
  /** Names whose values no quoting carries exactly; they go to the child's environment only. */
  keptOut: string[];
}

/** The readers every line is checked against: npm's dotenv and Node's own parser. */
const READERS: ((text: string) => Record<string, string>)[] = [
  (text) => dotenv.parse(text),
  (text) => parseEnv(text) as Record<string, string>,
];

/**
 * Quotings tried in order; the first that every reader returns exactly is used:
 * 1. single quotes: literal in every reader and in POSIX sh, may span lines;
 * 2. double quotes, newlines written as \n, for values with a single quote but no double
 *    quote, backslash, `$` or backtick: readers turn \n into a newline, and sh, which would
 *    expand `$` and backticks, finds none to expand.
 * Backticks are never used: a shell sourcing the file would run the value as a command.
 */
const QUOTINGS: ((value: string) => string | undefined)[] = [
  (v) => (v.includes("'") ? undefined : `'${v}'`),
  (v) => (/["\\$`]/.test(v) ? undefined : `"${v.replace(/\n/g, '\\n')}"`),
];

const readsBack = (text: string, name: string, value: string): boolean =>
  READERS.every((read) => read(text)[name] === value);

/**
 * Serializes entries as a .env file. Each value is written in the first quoting that both
 * readers return exactly; a value none carries (a carriage return; a single quote together
 * with a double quote, backslash, `$` or backtick) is left out and named in keptOut, never
 * written corrupted. The whole file is read back once more, in case lines interact.
 */
export function toDotenv(entries: EnvEntry[]): DotenvText {
  const keptOut: string[] = [];
  let lines: { name: string; value: string; line: string }[] = [];
  for (const { name, value } of entries) {
    const line = QUOTINGS.map((q) => q(value))
      .filter((q): q is string => q !== undefined)
      .map((q) => `${name}=${q}`)
      .find((l) => readsBack(l, name, value));
    if (line === undefined) keptOut.push(name);
    else lines.push({ name, value, line });
  }
  for (;;) {
    const text = lines.map((l) => `${l.line}\n`).join('');
    const bad = lines.filter((l) => !readsBack(text, l.name, l.value));
    if (bad.length === 0) return { text, keptOut };
    keptOut.push(...bad.map((b) => b.name));
    lines = lines.filter((l) => !bad.includes(l));
  }
}
