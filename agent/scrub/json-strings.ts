/**
 * The string tokens of a JSON text, keys included, with their place in the document. Lets the
 * trajectory scrubber rewrite just the strings that change and keep every other byte of a line
 * as it was (number formats, spacing, escapes).
 */

export interface StringToken {
  /** Offsets of the token in the text, quotes included. */
  readonly start: number;
  readonly end: number;
  /** Keys and indices from the root to the value (for a key: to the member it names). */
  readonly path: readonly (string | number)[];
  readonly isKey: boolean;
  readonly value: string;
}

type Frame = { kind: 'object'; key: string; expectKey: boolean } | { kind: 'array'; index: number };

/** Expects a text that `JSON.parse` accepts. */
export function stringTokens(text: string): StringToken[] {
  const tokens: StringToken[] = [];
  const stack: Frame[] = [];
  const path = () => stack.map((f) => (f.kind === 'object' ? f.key : f.index));
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      const end = stringEnd(text, i);
      const value = JSON.parse(text.slice(i, end)) as string;
      const isKey = top?.kind === 'object' && top.expectKey;
      if (isKey) top.key = value;
      tokens.push({ start: i, end, path: path(), isKey, value });
      i = end;
      continue;
    }
    if (c === '{') stack.push({ kind: 'object', key: '', expectKey: true });
    else if (c === '[') stack.push({ kind: 'array', index: 0 });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ':' && top?.kind === 'object') top.expectKey = false;
    else if (c === ',' && top?.kind === 'object') top.expectKey = true;
    else if (c === ',' && top?.kind === 'array') top.index++;
    i++;
  }
  return tokens;
}

function stringEnd(text: string, start: number): number {
  let j = start + 1;
  while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  return j + 1;
}
