import { afterEach, describe, expect, it, vi } from 'vitest';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import { scrubTransform } from '../../agent/scrub/transform.js';

afterEach(() => {
  vi.useRealTimers();
});

function collect(t: NodeJS.ReadWriteStream): Buffer[] {
  const out: Buffer[] = [];
  t.on('data', (b: Buffer) => out.push(b));
  return out;
}

describe('scrubTransform()', () => {
  it('releases held bytes after 100 ms of silence, not before', async () => {
    vi.useFakeTimers();
    const s = new Scrubber();
    s.register('K', 'sk-fake-0123456789');
    const t = scrubTransform(s.createStream());
    const out = collect(t);
    t.write(Buffer.from('prompt> sk-'));
    await vi.advanceTimersByTimeAsync(99);
    expect(Buffer.concat(out).toString()).toBe('prompt> ');
    await vi.advanceTimersByTimeAsync(1);
    expect(Buffer.concat(out).toString()).toBe('prompt> sk-');
  });

  it('uses the configured idle time and masks a long held prefix', async () => {
    vi.useFakeTimers();
    const s = new Scrubber();
    s.register('K', 'sk-fake-0123456789');
    const t = scrubTransform(s.createStream(), { idleMs: 20 });
    const out = collect(t);
    t.write(Buffer.from('key sk-fake-0123'));
    await vi.advanceTimersByTimeAsync(20);
    expect(Buffer.concat(out).toString()).toBe('key [REDACTED:K]');
  });

  it('releases everything at end of stream', async () => {
    const s = new Scrubber();
    s.register('K', 'sk-fake-0123456789');
    const t = scrubTransform(s.createStream());
    const out = collect(t);
    const done = new Promise((resolve) => t.on('end', resolve));
    t.end(Buffer.from('tail sk-f'));
    await done;
    expect(Buffer.concat(out).toString()).toBe('tail sk-f');
  });
});
