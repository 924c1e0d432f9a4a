import { describe, expect, it } from 'vitest';
import { newEventId, randomHex } from '../../server/ids.js';

describe('random identifiers', () => {
  it('gives hex of the length asked, never the same twice, across many pool refills', () => {
    const seen = new Set<string>();
    // 40,000 ids of 8 bytes: about 80 refills of the 4 KiB pool, and ids that straddle none.
    for (let i = 0; i < 40_000; i++) {
      const hex = randomHex(8);
      expect(hex).toMatch(/^[0-9a-f]{16}$/);
      seen.add(hex);
    }
    expect(seen.size).toBe(40_000);
    for (const n of [1, 3, 32, 4095, 4096]) expect(randomHex(n)).toHaveLength(2 * n);
    expect(() => randomHex(4097)).toThrow(RangeError);
  });

  it('event ids: the time first, so they sort by it, then 16 random hex digits using every bit', () => {
    const digits = Array.from({ length: 16 }, () => new Set<string>());
    const before = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      const id = newEventId();
      expect(id).toMatch(/^evt_[0-9a-f]{28}$/);
      ids.push(id);
      for (let d = 0; d < 16; d++) digits[d]!.add(id[16 + d]!);
    }
    expect(digits.map((s) => s.size)).toEqual(Array(16).fill(16));
    const times = ids.map((id) => Number.parseInt(id.slice(4, 16), 16));
    expect(times[0]).toBeGreaterThanOrEqual(before);
    expect(times.at(-1)).toBeLessThanOrEqual(Date.now());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });
});
