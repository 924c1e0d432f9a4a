/**
 * fast-check arbitraries: secrets built to overlap, nest and share prefixes, from a small
 * alphabet with quotes, backslashes, newlines and non-ASCII; text with occurrences planted in
 * every encoding.
 */
import fc from 'fast-check';

const ALPHABET = [
  'a',
  'b',
  'c',
  '-',
  '"',
  '\\',
  '\n',
  ' ',
  'é',
  '€',
  '😀',
  '=',
  '+',
  '/',
  '%',
  '<',
];

const char = fc.constantFrom(...ALPHABET);

export const word = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.array(char, { minLength, maxLength }).map((a) => a.join(''));

/** Up to four values; later ones share a prefix with, overlap, contain or extend earlier ones. */
export const secrets: fc.Arbitrary<string[]> = fc
  .tuple(word(8, 16), fc.array(fc.tuple(fc.nat(4), word(0, 10), fc.nat(40)), { maxLength: 3 }))
  .map(([first, rest]) => {
    const out = [first];
    for (const [kind, extra, k] of rest) {
      const base = out[k % out.length]!;
      const chars = Array.from(base); // cut between code points, never inside a surrogate pair
      const cut = k % chars.length;
      const head = chars.slice(0, cut).join('');
      const derived = [
        head + extra, // shares a prefix
        chars.slice(cut).join('') + extra, // starts with a suffix: overlaps
        extra + base + extra, // contains it: nested
        `${head}\n${extra}`, // multi-line
        extra.padEnd(8, 'a'), // unrelated
      ][kind]!;
      out.push(derived);
    }
    return out;
  });

const ENCODERS: readonly ((s: string, k: number) => string)[] = [
  (s) => s,
  (s) => JSON.stringify(s).slice(1, -1),
  (s) => encodeURIComponent(s),
  (s, k) => Buffer.concat([Buffer.alloc(k % 3, 0x41 + k), Buffer.from(s)]).toString('base64'),
  (s, k) => s.split('\n').join(['\r\n', ' ', '\n   ', '\t'][k % 4]),
  (s) => s.trim(),
];

/** Random text from the same alphabet with values planted in random encodings. */
export function textWith(values: readonly string[]): fc.Arbitrary<string> {
  const filler = word(0, 12);
  const planted = fc
    .tuple(fc.nat(values.length - 1), fc.nat(ENCODERS.length - 1), fc.nat(100))
    .map(([v, e, k]) => ENCODERS[e]!(values[v]!, k));
  return fc.array(fc.oneof(filler, planted), { maxLength: 8 }).map((a) => a.join(''));
}

/** Sorted distinct cut points inside [0, length]. */
export function cutsOf(length: number): fc.Arbitrary<number[]> {
  return fc
    .uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: 12 })
    .map((a) => a.sort((x, y) => x - y));
}
