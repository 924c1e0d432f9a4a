/**
 * One regression test per public leak case of another masking tool
 * (fixtures/scrub-cases.json, reduced by the project; values are invented).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { HAS_SHARED, HERE, normalise, readJson, SHARED, writeAll } from './helpers.js';

interface LeakCase {
  id: string;
  what_went_wrong: string;
  secrets: string[];
  writes?: string[];
  expected: string;
}

const fixture = readJson<{ cases: LeakCase[] }>(`${HERE}/fixtures/scrub-cases.json`).cases;
const byId = new Map(fixture.map((c) => [c.id, c]));

function scrubberFor(c: LeakCase): Scrubber {
  const scrubber = new Scrubber();
  for (const [i, value] of c.secrets.entries()) scrubber.register(`SECRET_${i}`, value);
  return scrubber;
}

function runCase(c: LeakCase): string {
  return normalise(writeAll(scrubberFor(c).createStream(), c.writes ?? []));
}

function theCase(id: string): LeakCase {
  const c = byId.get(id);
  if (c === undefined) throw new Error(`case ${id} is missing from the fixture`);
  return c;
}

describe('leak cases with writes', () => {
  const written = fixture.filter((c) => c.writes !== undefined);

  it('covers every case that lists writes', () => {
    expect(written.map((c) => c.id)).toEqual([
      'L01',
      'L03',
      'L05',
      'L07',
      'L09',
      'L11',
      'L13',
      'L15',
      'L19',
      'L21',
      'L23',
      'L29',
      'L33',
    ]);
  });

  for (const c of written) {
    it(`${c.id}: ${c.what_went_wrong}`, () => {
      expect(runCase(c)).toBe(c.expected);
    });
  }

  it('L01: a PEM split over writes becomes exactly one marker', () => {
    const out = writeAll(scrubberFor(theCase('L01')).createStream(), theCase('L01').writes!);
    expect(out.match(/\[REDACTED:/g)).toHaveLength(1);
  });

  it('L33: too-short values are reported by name, never by value', () => {
    const warnings = new Scrubber().registerAll(
      theCase('L33').secrets.map((value, i) => ({ name: `V${i}`, value, sensitive: true })),
    );
    expect(warnings).toEqual([
      { name: 'V0', reason: 'value is shorter than 8 bytes; not scrubbed' },
      { name: 'V1', reason: 'value is shorter than 8 bytes; not scrubbed' },
    ]);
  });
});

describe('leak cases described in prose', () => {
  it('L16: a 5000-byte value cut at 4096 and at 1000 random offsets is masked whole', () => {
    const chunks: string[] = [];
    for (let i = 0; chunks.join('').length < 5000; i++) {
      chunks.push(sha256Hex(`fake-long-${i}`));
    }
    const secret = chunks.join('').slice(0, 5000);
    const scrubber = new Scrubber();
    scrubber.register('LONG', secret);
    const input = Buffer.from(`pre ${secret} post`);
    const splits = [[4096], ...Array.from({ length: 1000 }, (_, k) => [(k * 7919) % input.length])];
    for (const cuts of splits) {
      const stream = scrubber.createStream();
      const out = [stream.write(input.subarray(0, cuts[0])), stream.write(input.subarray(cuts[0]))];
      out.push(stream.end());
      expect(normalise(Buffer.concat(out).toString())).toBe('pre [REDACTED] post');
    }
  });

  it('L24: redact first, then truncate; a truncated long prefix is still masked', () => {
    const scrubber = new Scrubber();
    scrubber.register('TOKEN', 'sk-fake-TRUNC-0123456789');
    const output = 'token sk-fake-TRUNC-0123456789 end';
    expect(normalise(scrubber.scrubText(output))).toBe('token [REDACTED] end');
    // The wrong order: the tail "sk-fake-TRUNC-" is a 14-byte prefix, masked at end of input.
    expect(normalise(scrubber.scrubText(output.slice(0, 20)))).toBe('token [REDACTED]');
  });

  it('L26: a value split across two capped messages is masked before either is sealed', () => {
    const scrubber = new Scrubber();
    scrubber.register('KEY', 'sk-fake-0123456789abcdef');
    const stream = scrubber.createStream();
    const first = stream.write(Buffer.from(`${'x'.repeat(36)} sk-`)).toString();
    const second = Buffer.concat([
      stream.write(Buffer.from('fake-0123456789abcdef done')),
      stream.end(),
    ]);
    expect(first).toBe(`${'x'.repeat(36)} `);
    expect(normalise(second.toString())).toBe('[REDACTED] done');
  });

  it('L27: a value registered mid-stream applies to every byte not yet emitted', () => {
    const scrubber = new Scrubber();
    scrubber.register('OTHER', 'token=tok-OTHER-99999');
    const stream = scrubber.createStream();
    const parts = [stream.write(Buffer.from('refresh ok, token='))];
    // "token=" is a prefix of OTHER, so it is still held back when the new value arrives.
    expect(stream.held).toBe('token='.length);
    scrubber.register('LATE', 'tok-LATE-000111222');
    parts.push(stream.write(Buffer.from('tok-LATE-000111222\n')), stream.end());
    expect(normalise(Buffer.concat(parts).toString())).toBe('refresh ok, token=[REDACTED]\n');
  });

  it('L28: a value registered after the stream started with no secrets is masked', () => {
    const scrubber = new Scrubber();
    const stream = scrubber.createStream();
    const parts = [stream.write(Buffer.from(''))];
    scrubber.register('DYN', 'dyn-secret-4455aa');
    parts.push(stream.write(Buffer.from('x dyn-secret-4455aa\n')), stream.end());
    expect(normalise(Buffer.concat(parts).toString())).toBe('x [REDACTED]\n');
  });
});

describe.runIf(HAS_SHARED)('leak cases in ../shared', () => {
  // The body runs while tests are collected, even when runIf skips them: read only if present.
  const shared = HAS_SHARED
    ? readJson<{ cases: LeakCase[] }>(`${SHARED}/cases/scrub-cases.json`).cases
    : [];
  for (const c of shared.filter((x) => x.writes !== undefined)) {
    it(`${c.id} (shared copy): ${c.what_went_wrong}`, () => {
      expect(runCase(c)).toBe(c.expected);
    });
  }
});

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
