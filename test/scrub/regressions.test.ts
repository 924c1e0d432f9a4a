/**
 * Counterexamples fast-check found while the engine was written, pinned as named tests.
 */
import { describe, expect, it } from 'vitest';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { TrajectoryScrubber } from '../../agent/scrub/trajectory.js';
import { defaultMarker, refPatterns, writeCut } from './helpers.js';
import { referenceScrub } from './reference.js';

describe('regressions found by the property tests', () => {
  it('a run of periodic matches that crosses a write is one group (seed -1542659542)', () => {
    // The run-skipping state of one scan leaked into the next one, so the matches that
    // straddle the boundary between two writes were skipped and the marker was cut in two.
    const value = ' "c==%/c"</<é\n';
    const entries = [{ name: 'S0', value, sensitive: true }];
    const input = Buffer.from(
      ' "c==%/c"</<é\n%20%22c%3D%3D%25%2Fc%22%3C%2F%3C%C3%A9%0A "c==%/c"</<é\n "c==%/c"</<é\n',
    );
    const scrubber = new Scrubber();
    scrubber.registerAll(entries);
    const expected = referenceScrub(input, refPatterns(entries), {
      maskFrom: 8,
      marker: defaultMarker,
    });
    for (let k = 0; k <= input.length; k++) {
      expect(writeCut(scrubber.createStream(), input, [k]).equals(expected)).toBe(true);
    }
  });

  it('a long periodic run inside a JSON line stays masked (seed -1589145376)', () => {
    const value = 'aaa😀aaaa';
    const scrubber = new Scrubber();
    scrubber.register('S0', value);
    const text = 'aaa😀aaaaaaa😀aaaa€aaaaa😀aaaaaaa😀aaaa';
    const line = `${JSON.stringify({ [text]: '', out: ['', { k: text }] })}\n`;
    const t = new TrajectoryScrubber(scrubber);
    const out = Buffer.concat([t.write(Buffer.from(line)), t.end()]).toString();
    expect(out).not.toContain(value);
    expect(() => JSON.parse(out)).not.toThrow();
  });

  it('writes of 64 KiB of one repeated byte keep a single open group', () => {
    const scrubber = new Scrubber();
    scrubber.register('A', 'a'.repeat(16));
    const stream = scrubber.createStream();
    const chunk = Buffer.alloc(64 * 1024, 'a');
    for (let i = 0; i < 3; i++) expect(stream.write(chunk).length).toBe(0);
    expect(stream.end().toString()).toBe('[REDACTED:A]');
  });
});
