/**
 * Properties of the byte stream against a whole-input reference (reference.ts): chunking never
 * matters, registration order never matters, and no registered piece survives in plain output.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SecretEntry } from '../../agent/scrub/policy.js';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { cutsOf, secrets, textWith } from './arbitraries.js';
import { defaultMarker, refPatterns, writeCut } from './helpers.js';
import { type RefPattern, referenceScrub } from './reference.js';

const entriesOf = (values: readonly string[]): SecretEntry[] =>
  values.map((value, i) => ({ name: `S${i}`, value, sensitive: true }));

function scrubberOf(entries: readonly SecretEntry[]): Scrubber {
  const scrubber = new Scrubber();
  scrubber.registerAll(entries);
  return scrubber;
}

const reference = (input: Uint8Array, patterns: readonly RefPattern[]) =>
  referenceScrub(input, patterns, { maskFrom: 8, marker: defaultMarker });

const MARKER = /\[REDACTED:[A-Za-z0-9_.-]*\]/;

/** Plain text between markers: no registered piece may occur in it. */
function plainSegments(output: Buffer): Buffer[] {
  return output
    .toString('latin1')
    .split(new RegExp(MARKER.source, 'g'))
    .map((s) => Buffer.from(s, 'latin1'));
}

const scenario = secrets.chain((values) =>
  textWith(values).chain((text) => {
    const input = Buffer.from(text, 'utf8');
    return fc.record({
      values: fc.constant(values),
      input: fc.constant(input),
      cuts: cutsOf(input.length),
    });
  }),
);

describe('scrub stream properties', () => {
  it('equals the whole-input reference for any chunking', () => {
    fc.assert(
      fc.property(scenario, ({ values, input, cuts }) => {
        const entries = entriesOf(values);
        const out = writeCut(scrubberOf(entries).createStream(), input, cuts);
        expect(out.toString('latin1')).toBe(
          reference(input, refPatterns(entries)).toString('latin1'),
        );
      }),
      { numRuns: 400 },
    );
  });

  it('scans long writes (aligned 32-bit words) as the short ones do', () => {
    // No piece holds the byte 0x01, so no match, held prefix or group crosses it: the output of
    // the whole input is the output of each piece of it (each with its 0x01) scrubbed alone.
    // Those are short and take the byte path; writes of 1 KiB and more take the word path.
    const SEP = Buffer.from([1]);
    const long = secrets.chain((values) =>
      fc.record({
        values: fc.constant(values),
        parts: fc.array(textWith(values), { minLength: 24, maxLength: 48 }),
        cuts: fc.uniqueArray(fc.nat(1 << 16), { maxLength: 3 }),
        offset: fc.nat(7),
      }),
    );
    fc.assert(
      fc.property(long, ({ values, parts, cuts, offset }) => {
        const scrubber = scrubberOf(entriesOf(values));
        const pieces = parts.map((t) => Buffer.concat([Buffer.from(t, 'utf8'), SEP]));
        // Shifted by 0 to 7 bytes in a fresh buffer: the word alignment differs between runs.
        const input = Buffer.concat([Buffer.alloc(offset), ...pieces]).subarray(offset);
        const at = cuts.map((c) => c % (input.length + 1)).sort((x, y) => x - y);
        const whole = writeCut(scrubber.createStream(), input, [...new Set(at)]);
        const alone = pieces.map((piece) => writeCut(scrubber.createStream(), piece, []));
        expect(whole.toString('latin1')).toBe(Buffer.concat(alone).toString('latin1'));
      }),
      { numRuns: 150 },
    );
  });

  it('follows long periodic runs in long writes as the reference does', () => {
    // A periodic value (period 1 to 5 characters) inside runs of its period that are longer than
    // 1 KiB, broken once: the run is followed a word at a time on the word path.
    const run = fc.record({
      base: fc.array(fc.constantFrom('a', 'b', '"', 'é', '-', '%'), { minLength: 1, maxLength: 5 }),
      extra: fc.nat(3),
      before: fc.nat(40),
      first: fc.integer({ min: 200, max: 600 }),
      second: fc.integer({ min: 0, max: 200 }),
      cuts: fc.uniqueArray(fc.nat(1 << 16), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(run, ({ base, extra, before, first, second, cuts }) => {
        const unit = base.join('');
        const value = unit.repeat(Math.ceil(8 / unit.length) + extra);
        const entries = entriesOf([value]);
        const text = `${'x'.repeat(before)}${unit.repeat(first)}x${unit.repeat(second)}y`;
        const input = Buffer.from(text, 'utf8');
        const at = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
        const out = writeCut(scrubberOf(entries).createStream(), input, at);
        expect(out.toString('latin1')).toBe(
          reference(input, refPatterns(entries)).toString('latin1'),
        );
      }),
      { numRuns: 40 },
    );
  });

  it('gives the same output for every single split point', () => {
    fc.assert(
      fc.property(scenario, ({ values, input }) => {
        const scrubber = scrubberOf(entriesOf(values));
        const whole = writeCut(scrubber.createStream(), input, []);
        for (let k = 0; k <= input.length; k++) {
          expect(writeCut(scrubber.createStream(), input, [k]).equals(whole)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('never depends on the order values were registered in', () => {
    fc.assert(
      fc.property(scenario, ({ values, input, cuts }) => {
        const entries = entriesOf(values);
        const forward = writeCut(scrubberOf(entries).createStream(), input, cuts);
        const backward = writeCut(scrubberOf([...entries].reverse()).createStream(), input, cuts);
        expect(backward.equals(forward)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('leaves no registered piece in plain output, idle flushes included', () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.boolean()), ({ values, input, cuts }, flushes) => {
        const entries = entriesOf(values);
        const patterns = refPatterns(entries);
        const stream = scrubberOf(entries).createStream();
        const parts: Buffer[] = [];
        let at = 0;
        [...cuts, input.length].forEach((cut, i) => {
          parts.push(Buffer.from(stream.write(input.subarray(at, cut))));
          if (flushes[i] === true) parts.push(stream.flush());
          at = cut;
        });
        parts.push(stream.end());
        for (const plain of plainSegments(Buffer.concat(parts))) {
          // The reference masks nothing in a segment that holds no match and no long prefix.
          const checked = referenceScrub(plain, patterns, {
            maskFrom: Infinity,
            marker: defaultMarker,
          });
          expect(checked.equals(plain)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps UTF-8 whole: output decodes when input does, idle flushes included', () => {
    fc.assert(
      fc.property(scenario, ({ values, input, cuts }) => {
        const stream = scrubberOf(entriesOf(values)).createStream();
        const parts: Buffer[] = [];
        let at = 0;
        for (const cut of [...cuts, input.length]) {
          parts.push(Buffer.from(stream.write(input.subarray(at, cut))), stream.flush());
          at = cut;
        }
        parts.push(stream.end());
        const out = Buffer.concat(parts);
        expect(() => new TextDecoder('utf-8', { fatal: true }).decode(out)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});
