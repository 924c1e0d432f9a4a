import { describe, expect, it } from 'vitest';
import { base64Windows, jsonEscapes, urlEncodings } from '../../agent/scrub/encodings.js';
import { dotenvLeaves, jsonLeaves, urlSecrets } from '../../agent/scrub/leaves.js';
import { piecesFor } from '../../agent/scrub/pieces.js';
import { DEFAULT_POLICY, planSecrets } from '../../agent/scrub/policy.js';

const texts = (value: string) =>
  piecesFor(value, DEFAULT_POLICY)
    .filter((p) => p.spec.segments.length === 1)
    .map((p) => Buffer.from(p.spec.segments[0]!).toString('utf8'));

describe('jsonEscapes()', () => {
  it('includes the JSON.stringify form, the HTML-safe form and \\u00XX control escapes', () => {
    const forms = jsonEscapes('a<b>&c\n"d\\');
    expect(forms).toContain(JSON.stringify('a<b>&c\n"d\\').slice(1, -1));
    expect(forms).toContain('a\\u003cb\\u003e\\u0026c\\n\\"d\\\\');
    expect(forms).toContain('a<b>&c\\u000a\\"d\\\\');
  });

  it('includes the ASCII-only form of non-ASCII text, surrogate pairs as two escapes', () => {
    expect(jsonEscapes('pé😀')).toContain('p\\u00e9\\ud83d\\ude00');
  });

  it('every form decodes back to the value', () => {
    const value = 'x<"\\\n/é😀+\'`&';
    for (const form of jsonEscapes(value).slice(0, -1)) expect(JSON.parse(`"${form}"`)).toBe(value);
  });
});

describe('urlEncodings()', () => {
  it('has upper- and lower-case hex and + for space, and each decodes back', () => {
    const value = 'a b/c%d';
    const forms = urlEncodings(value);
    expect(forms).toEqual(
      expect.arrayContaining(['a%20b%2Fc%25d', 'a%20b%2fc%25d', 'a+b%2Fc%25d']),
    );
    for (const form of forms) expect(decodeURIComponent(form.replace(/\+/g, ' '))).toBe(value);
  });
});

describe('base64Windows()', () => {
  it('each window occurs in the base64 of the value at every alignment, both alphabets', () => {
    const value = Buffer.from('secret-value-\u00ff\u00fe>>??', 'latin1');
    const windows = base64Windows(value);
    for (let k = 0; k < 3; k++) {
      for (const suffix of [0, 1, 2]) {
        const text = Buffer.concat([Buffer.alloc(k, 7), value, Buffer.alloc(suffix, 9)]);
        for (const encoding of ['base64', 'base64url'] as const) {
          expect(windows.some((w) => text.toString(encoding).includes(w))).toBe(true);
        }
      }
    }
    expect(windows.every((w) => !w.includes('='))).toBe(true);
  });
});

describe('leaves', () => {
  it('jsonLeaves() returns string and number leaves, not keys', () => {
    expect(jsonLeaves('{"client_secret":"cs-1","n":12345678,"a":[{"k":"v"}]}')).toEqual([
      'cs-1',
      '12345678',
      'v',
    ]);
    expect(jsonLeaves('not json')).toEqual([]);
  });

  it('dotenvLeaves() reads NAME=value lines, quotes and comments', () => {
    const blob = '# c\nexport A=one-value\nB="two\nlines"\nC=\'three\' \nD=four # note';
    expect(dotenvLeaves(blob)).toEqual(['one-value', 'two\nlines', 'three', 'four']);
    expect(dotenvLeaves('-----BEGIN KEY-----\nabc')).toEqual([]);
  });

  it('urlSecrets() returns the password as written and decoded, or a token user', () => {
    expect(urlSecrets('postgres://app:p%40ss-word-1@db/x')).toEqual([
      'p%40ss-word-1',
      'p@ss-word-1',
    ]);
    expect(urlSecrets('https://k9f8e7d6@o1.ingest.example/42')).toEqual(['k9f8e7d6', 'k9f8e7d6']);
    expect(urlSecrets('https://example.com/a@b')).toEqual([]);
  });
});

describe('piecesFor()', () => {
  it('drops pieces shorter than the minimum, such as the "{" line of a JSON value', () => {
    const pieces = texts('{\n  "client_secret": "cs-77aa-88bb-99cc"\n}');
    expect(pieces).toContain('"client_secret": "cs-77aa-88bb-99cc"');
    expect(pieces).toContain('cs-77aa-88bb-99cc');
    expect(pieces.some((p) => p.length < 8)).toBe(false);
  });

  it('registers a multi-line value as lines joined by whitespace runs', () => {
    const lines = piecesFor('line-one-AAAA1111\nline-two-BBBB2222', DEFAULT_POLICY).find(
      (p) => p.form === 'lines',
    );
    expect(lines?.spec.segments.map((s) => Buffer.from(s).toString())).toEqual([
      'line-one-AAAA1111',
      'line-two-BBBB2222',
    ]);
    expect(lines?.spec.maxGap).toBe(DEFAULT_POLICY.maxGap);
  });

  it('registers the raw and the trimmed value', () => {
    expect(texts('tkn-AbCdEf123456\n')).toEqual(
      expect.arrayContaining(['tkn-AbCdEf123456\n', 'tkn-AbCdEf123456']),
    );
  });
});

describe('planSecrets()', () => {
  it('never registers plain variables and warns by name only for short sensitive ones', () => {
    const plan = planSecrets(
      [
        { name: 'REGION', value: 'eu-west-1-long-enough', sensitive: false },
        { name: 'PIN', value: '1234', sensitive: true },
        { name: 'KEY', value: 'sk-fake-0123456789', sensitive: true },
      ],
      DEFAULT_POLICY,
    );
    expect(plan.secrets.map((s) => s.name)).toEqual(['KEY']);
    expect(plan.warnings).toEqual([
      { name: 'PIN', reason: 'value is shorter than 8 bytes; not scrubbed' },
    ]);
    expect(JSON.stringify(plan.warnings)).not.toContain('1234');
  });

  it('drops pieces over the length cap with a warning that carries no value', () => {
    const value = 'v'.repeat(100);
    const plan = planSecrets([{ name: 'BIG', value, sensitive: true }], {
      ...DEFAULT_POLICY,
      maxPieceLength: 110,
    });
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]!.reason).toMatch(/longer than 110 bytes/);
    expect(JSON.stringify(plan.warnings)).not.toContain(value);
    expect(plan.secrets[0]!.pieces.length).toBeGreaterThan(0);
  });
});
