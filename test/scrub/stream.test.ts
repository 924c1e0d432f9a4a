import { describe, expect, it } from 'vitest';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { normalise, writeAll } from './helpers.js';

function scrubber(values: Record<string, string>, opts = {}): Scrubber {
  const s = new Scrubber(opts);
  for (const [name, value] of Object.entries(values)) s.register(name, value);
  return s;
}

const text = (b: Buffer) => b.toString('utf8');

describe('Scrubber streams: merging', () => {
  it('merges overlapping and nested matches into one marker, named by the earliest start', () => {
    const s = scrubber({
      B_NESTED: 'cdefghijkl',
      A_OUTER: 'abcdefghijklmnop',
      C_TAIL: 'mnopqrstuvwx',
    });
    expect(s.scrubText('>abcdefghijklmnopqrstuvwx<')).toBe('>[REDACTED:A_OUTER]<');
  });

  it('keeps adjacent matches apart', () => {
    const s = scrubber({ ONE: 'aaaa-1111', TWO: 'bbbb-2222' });
    expect(s.scrubText('aaaa-1111bbbb-2222')).toBe('[REDACTED:ONE][REDACTED:TWO]');
  });

  it('breaks a same-start tie by length, then name, whatever the registration order', () => {
    const a = scrubber({ ZED: 'same-start-long-one', ALPHA: 'same-start' });
    const b = scrubber({ ALPHA: 'same-start', ZED: 'same-start-long-one' });
    expect(a.scrubText('x same-start-long-one')).toBe('x [REDACTED:ZED]');
    expect(b.scrubText('x same-start-long-one')).toBe('x [REDACTED:ZED]');
    expect(scrubber({ B: 'dup-value-1', A: 'dup-value-1' }).scrubText('dup-value-1')).toBe(
      '[REDACTED:A]',
    );
  });

  it('never scans a marker again', () => {
    expect(scrubber({ M: 'REDACTED:M' }).scrubText('x REDACTED:M y')).toBe('x [REDACTED:M] y');
  });

  it('sanitises names used inside markers and rejects unsafe marker templates', () => {
    expect(scrubber({ 'we"ird\\name': 'weird-value-1' }).scrubText('weird-value-1')).toBe(
      '[REDACTED:we_ird_name]',
    );
    expect(
      scrubber({ K: 'custom-marker-1' }, { marker: '***{name}***' }).scrubText('custom-marker-1'),
    ).toBe('***K***');
    expect(() => new Scrubber({ marker: 'a\\b' })).toThrow(
      '"marker" must be printable ASCII without quote or backslash; got "a\\\\b"',
    );
  });
});

describe('Scrubber streams: holding back', () => {
  it('holds back exactly the bytes that could still start a match', () => {
    const stream = scrubber({ K: 'sk-fake-0123456789' }).createStream();
    expect(text(stream.write(Buffer.from('log line sk-fa')))).toBe('log line ');
    expect(stream.held).toBe(5);
    expect(text(stream.write(Buffer.from('bulous\n')))).toBe('sk-fabulous\n');
    expect(stream.held).toBe(0);
  });

  it('idle flush masks a held prefix at least min-length long', () => {
    const stream = scrubber({ K: 'sk-fake-0123456789' }).createStream();
    stream.write(Buffer.from('key=sk-fake-01'));
    expect(text(stream.flush())).toBe('[REDACTED:K]');
    // The matcher state survives the flush: the rest of the value is masked silently.
    expect(text(stream.write(Buffer.from('23456789 ok')))).toBe(' ok');
  });

  it('idle flush releases a shorter prefix, and masks the rest if the value then completes', () => {
    const stream = scrubber({ K: 'sk-fake-0123456789' }).createStream();
    expect(text(stream.write(Buffer.from('key=sk-f')))).toBe('key=');
    expect(text(stream.flush())).toBe('sk-f');
    expect(text(stream.write(Buffer.from('ake-0123456789 ok')))).toBe('[REDACTED:K] ok');
  });

  it('end of stream masks a held prefix of min length or more, releases a shorter one', () => {
    expect(writeAll(scrubber({ K: 'sk-fake-0123456789' }).createStream(), ['a sk-fake-01'])).toBe(
      'a [REDACTED:K]',
    );
    expect(writeAll(scrubber({ K: 'sk-fake-0123456789' }).createStream(), ['a sk-fake'])).toBe(
      'a sk-fake',
    );
  });

  it('idle flush never splits a UTF-8 character', () => {
    const stream = scrubber({ K: 'x€-secret-value' }).createStream();
    const euro = Buffer.from('€');
    const held = Buffer.concat([Buffer.from('x'), euro.subarray(0, 2)]);
    expect(stream.write(held).length).toBe(0);
    expect(text(stream.flush())).toBe('x');
    expect(text(stream.write(Buffer.concat([euro.subarray(2), Buffer.from('q')])))).toBe('€q');
  });

  it('passes binary bytes through unchanged apart from matches', () => {
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) & 0xff));
    const s = scrubber({ K: 'binary-secret-1' });
    const input = Buffer.concat([bytes, Buffer.from('binary-secret-1'), bytes]);
    const out = s.scrub(input);
    expect(out.equals(Buffer.concat([bytes, Buffer.from('[REDACTED:K]'), bytes]))).toBe(true);
  });

  it('keeps memory bounded over a long run of overlapping matches', () => {
    const s = scrubber({ A: 'a'.repeat(16) });
    const stream = s.createStream();
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let emitted = 0;
    for (let i = 0; i < 64; i++) {
      emitted += stream.write(chunk).length;
      expect(stream.held).toBe((i + 1) * chunk.length); // all of it is inside the open group
    }
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 64; i++) stream.write(chunk);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(8 * 1024 * 1024);
    expect(emitted).toBe(0);
    expect(text(Buffer.concat([stream.write(Buffer.from('b')), stream.end()]))).toBe(
      '[REDACTED:A]b',
    );
  });
});

describe('Scrubber streams: live registration', () => {
  it('applies a new value to every stream, from the next byte on', () => {
    const s = new Scrubber();
    const one = s.createStream();
    const two = s.createStream();
    expect(text(one.write(Buffer.from('before ')))).toBe('before ');
    s.register('LIVE', 'refreshed-token-123');
    expect(normalise(text(one.write(Buffer.from('refreshed-token-123\n'))))).toBe('[REDACTED]\n');
    const out = Buffer.concat([two.write(Buffer.from('x refreshed-token-123 y')), two.end()]);
    expect(normalise(text(out))).toBe('x [REDACTED] y');
  });

  it('applies a new value to bytes still held back for another one', () => {
    const s = scrubber({ OLD: 'tok-LATE-000111222-old' });
    const stream = s.createStream();
    expect(text(stream.write(Buffer.from('tok-LATE-000111222')))).toBe('');
    s.register('NEW', 'tok-LATE-000111222');
    expect(text(Buffer.concat([stream.write(Buffer.from('\n')), stream.end()]))).toBe(
      '[REDACTED:NEW]\n',
    );
  });
});
