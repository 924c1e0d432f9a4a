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
 * Quotings tried in order, the first that every reader reads back exactly is used:
 * 1. single quotes: literal, may span lines;
 * 2. double quotes with newlines written as \n (only for values without a backslash, since
 *    readers turn \n into a newline and treat other escapes differently);
 * 3. backticks: literal, may span lines.
 */
const QUOTINGS: ((value: string) => string | undefined)[] = [
  (v) => (v.includes("'") ? undefined : `'${v}'`),
  (v) => (v.includes('"') || v.includes('\\') ? undefined : `"${v.replace(/\n/g, '\\n')}"`),
  (v) => (v.includes('`') ? undefined : `\`${v}\``),
];

const readsBack = (text: string, name: string, value: string): boolean =>
  READERS.every((read) => read(text)[name] === value);

/**
 * Serializes entries as a .env file. Each value is written in the first quoting that both
 * readers return exactly; a value none carries (a carriage return, or all three quote
 * characters with a backslash) is left out and named in keptOut, never written corrupted. The
 * whole file is read back once more, in case lines interact.
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
