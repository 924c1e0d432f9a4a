import { parseEnv } from 'node:util';
import dotenv from 'dotenv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toDotenv } from '../../agent/dotenv.js';

const nameArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);
/** Unicode text rich in the characters .env readers treat specially. */
const valueArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          "'",
          '"',
          '`',
          '#',
          '$',
          '${',
          '\\',
          ' ',
          '\t',
          '\r',
          '\n',
          '\r\n',
          '=',
          'é',
          '🔑',
        ),
        fc.string({ maxLength: 5 }),
      ),
      { maxLength: 20 },
    )
    .map((parts) => parts.join('')),
);

describe('toDotenv()', () => {
  it('writes values that dotenv and util.parseEnv read back exactly', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(nameArb, valueArb), { selector: ([n]) => n, maxLength: 8 }),
        (pairs) => {
          const entries = pairs
            .filter(([, v]) => !v.includes('\0'))
            .map(([name, value]) => ({ name, value }));
          const { text, keptOut } = toDotenv(entries);
          const a = dotenv.parse(text);
          const b = parseEnv(text) as Record<string, string>;
          for (const { name, value } of entries) {
            if (keptOut.includes(name)) {
              expect(a[name]).toBeUndefined();
              continue;
            }
            expect(a[name]).toBe(value);
            expect(b[name]).toBe(value);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps out no value without a carriage return that one of its quotings carries', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        fc.pre(!value.includes('\r') && !value.includes('\0'));
        fc.pre(!value.includes("'") || !/["\\$`]/.test(value));
        expect(toDotenv([{ name: 'V', value }]).keptOut).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps out only values no quoting carries', () => {
    const { keptOut } = toDotenv([
      { name: 'CR', value: 'a\rb' },
      { name: 'PLAIN', value: 'sk-abc' },
      { name: 'MULTI', value: 'line1\nline2' },
      { name: 'APOSTROPHE', value: "it's #1" },
      { name: 'QUOTES', value: `it's "x"` },
      { name: 'DOLLAR', value: '$HOME $X #c' },
      { name: 'SUBSHELL', value: "it's $(id)" },
    ]);
    expect(keptOut).toEqual(['CR', 'QUOTES', 'SUBSHELL']);
  });

  it('never writes a line a shell would run a command from', () => {
    const { text } = toDotenv([
      { name: 'A', value: "it's `id`" },
      { name: 'B', value: "it's $(id)" },
      { name: 'C', value: '`id` $(id)' },
    ]);
    expect(text).toBe("C='`id` $(id)'\n");
  });
});
