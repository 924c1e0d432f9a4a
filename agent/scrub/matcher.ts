/**
 * Multi-pattern matcher over bytes. It reports every occurrence of every pattern, overlapping
 * and nested ones included, and says how much of a buffer's tail could still become one. It
 * knows nothing about secrets, names or streams.
 *
 * 1. Window. Let m be the shortest anchor (a pattern's longest segment; never shorter than the
 *    minimum piece length) and q = min(4, m). Any m - q + 1 consecutive positions hold one
 *    position whose q-gram lies inside the first m bytes of an anchor occurring there.
 * 2. Stride. Sample every T-th position, T = m - q + 1, rounded down to a multiple of 4 when the
 *    q-grams are read as aligned 32-bit words. Exactly one sample p falls in [s, s + T) for an
 *    anchor starting at s, and its q-gram lies inside the anchor's first m bytes.
 * 3. Index. For each pattern and each offset o in [0, T - 1], the q-gram at anchor offset o is
 *    set in a hashed bit filter and kept in a bucket as (gram, pattern, o).
 * 4. Sample. Test the filter with the q-gram at each sample: one load, one multiply and one bit
 *    test per T bytes.
 * 5. Verify. On a filter hit, every bucket entry with that exact gram names a candidate anchor
 *    start p - o; check the pattern there. A (pattern, start) pair is proposed by one sample
 *    only, so nothing is reported twice. A periodic pattern (period d shorter than its length,
 *    as in `aaaa…`) that matches is followed while the text keeps period d, and the whole run of
 *    overlapping matches is reported once (its union, named by its first match); later
 *    candidates inside the run are skipped. A run of overlapping matches costs O(1) per byte.
 * 6. Tail. For streaming, find the earliest position in the last maxLength - 1 bytes from which
 *    the rest of the buffer is a proper prefix of some pattern (a table keyed by each pattern's
 *    first two bytes proposes the candidates).
 */
import { type PatternSpec, PatternTable, SPACE_BYTES } from './patterns.js';

export interface MatchSink {
  /**
   * Occurrences of `pattern` covering [start, end), in the caller's coordinates: one match, or a
   * run of overlapping matches of a periodic pattern. `length` is the length of the match that
   * starts at `start`.
   */
  match(start: number, end: number, pattern: number, length: number): void;
  /** `pattern` could still match from the position `partial()` is about to return. */
  partial(pattern: number): void;
}

const GOLDEN = 0x9e3779b1 | 0;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class Matcher {
  readonly table: PatternTable;
  /** Longest match; a stream must keep maxLength - 1 bytes to see matches across writes. */
  readonly maxLength: number;
  private readonly q: number;
  /** Sampling stride; `words` when q-grams are read as aligned 32-bit words. */
  private readonly stride: number;
  private readonly words: boolean;
  private readonly fShift: number;
  private readonly bShift: number;
  private readonly filter: Int32Array;
  private readonly bucketStart: Int32Array;
  private readonly entGram: Int32Array;
  private readonly entPat: Int32Array;
  private readonly entOff: Int32Array;
  /** Per pattern: its length and pool offset when it is one segment, else 0 and -1. */
  private readonly exactLen: Int32Array;
  private readonly exactAt: Int32Array;
  /** Per one-segment pattern: its smallest period, and the end of its last run in this scan. */
  private readonly period: Int32Array;
  private readonly runEnd: Float64Array;
  /** Added to positions in `runEnd` so that each scan starts clean without clearing it. */
  private epoch = 0;
  private nextEpoch = 0;
  private readonly pairStart: Int32Array;
  private readonly pairPat: Int32Array;
  /** One bit per first-two-bytes key with candidates: a small table that stays in cache. */
  private readonly pairAny: Int32Array;
  private readonly byteStart: Int32Array;
  private readonly bytePat: Int32Array;

  constructor(specs: readonly PatternSpec[]) {
    const table = new PatternTable(specs);
    this.table = table;
    this.maxLength = table.maxLength;

    // 1. Window
    const m = table.minAnchor;
    this.q = Math.max(1, Math.min(4, m));

    // 2. Stride
    const stride = Math.max(1, m - this.q + 1);
    this.words = this.q === 4 && stride >= 4 && LITTLE_ENDIAN;
    this.stride = this.words ? stride & ~3 : stride;
    this.exactLen = new Int32Array(table.count);
    this.exactAt = new Int32Array(table.count).fill(-1);
    this.period = new Int32Array(table.count);
    this.runEnd = new Float64Array(table.count).fill(-Infinity);
    for (let i = 0; i < table.count; i++) {
      if (!table.isExact(i)) continue;
      const { at, length } = table.anchor(i);
      this.exactAt[i] = at;
      this.exactLen[i] = length;
      this.period[i] = smallestPeriod(table.pool.subarray(at, at + length));
    }

    // 3. Index, entries of a bucket by decreasing offset (so by increasing candidate start)
    const grams: number[] = [];
    const pats: number[] = [];
    const offs: number[] = [];
    for (let i = 0; i < table.count; i++) {
      const { at } = table.anchor(i);
      for (let o = this.stride - 1; o >= 0; o--) {
        grams.push(pack(table.pool, at + o, this.q));
        pats.push(i);
        offs.push(o);
      }
    }
    const fBits = clamp(Math.ceil(Math.log2(grams.length + 1)) + 5, 12, 23);
    const bBits = clamp(fBits - 4, 8, 16);
    this.fShift = 32 - fBits;
    this.bShift = fBits - bBits;
    this.filter = new Int32Array(1 << (fBits - 5));
    const buckets = grams.map((g) => {
      const h = Math.imul(g, GOLDEN) >>> this.fShift;
      this.filter[h >>> 5]! |= 1 << (h & 31);
      return h >>> this.bShift;
    });
    const order = csr(buckets, 1 << bBits);
    this.bucketStart = order.start;
    this.entGram = Int32Array.from(order.items, (k) => grams[k]!);
    this.entPat = Int32Array.from(order.items, (k) => pats[k]!);
    this.entOff = Int32Array.from(order.items, (k) => offs[k]!);

    // 6. Tail: candidates keyed by the first two bytes, and by the first byte alone.
    const pairKeys: number[] = [];
    const pairPats: number[] = [];
    const byteKeys: number[] = [];
    const bytePats: number[] = [];
    for (let i = 0; i < table.count; i++) {
      const head = table.firstSegment(i);
      if (table.isExact(i) && head.length < 2) continue;
      byteKeys.push(head[0]!);
      bytePats.push(i);
      const seconds = head.length >= 2 ? [head[1]!] : [...SPACE_BYTES, secondSegmentByte(table, i)];
      for (const b of seconds) {
        pairKeys.push(head[0]! | (b << 8));
        pairPats.push(i);
      }
    }
    const pairs = csr(pairKeys, 1 << 16);
    this.pairAny = new Int32Array(1 << 11);
    for (const k of pairKeys) this.pairAny[k >>> 5]! |= 1 << (k & 31);
    this.pairStart = pairs.start;
    this.pairPat = Int32Array.from(pairs.items, (k) => pairPats[k]!);
    const bytes = csr(byteKeys, 256);
    this.byteStart = bytes.start;
    this.bytePat = Int32Array.from(bytes.items, (k) => bytePats[k]!);
  }

  /**
   * Reports every occurrence inside `data` that ends after `minEnd`, shifted by `base`.
   */
  scan(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    if (this.table.count === 0 || data.length < this.table.minAnchor) return;

    this.epoch = this.nextEpoch;
    this.nextEpoch += data.length + this.maxLength + 1;
    if (this.words && data.length >= 1024) {
      this.scanWords(data, minEnd, base, sink);
    } else {
      this.scanBytes(data, minEnd, base, sink);
    }
  }

  /**
   * Earliest position p >= max(0, end - maxLength + 1) such that `data[p..end)` is a proper
   * prefix of some pattern, or -1. Every pattern that could still match from p goes to
   * `sink.partial`.
   */
  partial(data: Uint8Array, end: number, sink: MatchSink): number {
    const table = this.table;
    for (let p = Math.max(0, end - this.maxLength + 1); p < end; p++) {
      const pair = p + 1 < end;
      const key = pair ? data[p]! | (data[p + 1]! << 8) : data[p]!;
      if (pair && (this.pairAny[key >>> 5]! & (1 << (key & 31))) === 0) continue;
      const starts = pair ? this.pairStart : this.byteStart;
      const pats = pair ? this.pairPat : this.bytePat;
      let found = false;
      for (let k = starts[key]!; k < starts[key + 1]!; k++) {
        const pat = pats[k]!;
        if (!table.prefixAt(pat, data, p, end)) continue;
        found = true;
        sink.partial(pat);
      }
      if (found) return p;
    }
    return -1;
  }

  // 4. Sample, reading aligned 32-bit words.
  private scanWords(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    const first = (4 - (data.byteOffset & 3)) & 3;
    const count = (data.length - first) >>> 2;
    if (count <= 0) return;

    const words = new Int32Array(data.buffer, data.byteOffset + first, count);
    const step = this.stride >>> 2;
    const filter = this.filter;
    const shift = this.fShift;
    for (let w = 0; w < count; w += step) {
      const gram = words[w]!;
      const h = Math.imul(gram, GOLDEN) >>> shift;
      if ((filter[h >>> 5]! & (1 << (h & 31))) !== 0) {
        this.verify(data, first + (w << 2), gram, h, minEnd, base, sink);
      }
    }
  }

  // 4. Sample, one byte at a time (short anchors or a big-endian host).
  private scanBytes(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    const q = this.q;
    for (let p = 0; p + q <= data.length; p += this.stride) {
      const gram = pack(data, p, q);
      const h = Math.imul(gram, GOLDEN) >>> this.fShift;
      if ((this.filter[h >>> 5]! & (1 << (h & 31))) !== 0) {
        this.verify(data, p, gram, h, minEnd, base, sink);
      }
    }
  }

  // 5. Verify
  private verify(
    data: Uint8Array,
    p: number,
    gram: number,
    h: number,
    minEnd: number,
    base: number,
    sink: MatchSink,
  ): void {
    const b = h >>> this.bShift;
    const last = this.bucketStart[b + 1]!;
    for (let e = this.bucketStart[b]!; e < last; e++) {
      if (this.entGram[e] !== gram) continue;
      const pat = this.entPat[e]!;
      const a = p - this.entOff[e]!;
      const len = this.exactLen[pat]!;
      if (len === 0) {
        const end = this.table.matchAt(pat, data, a);
        const start = this.table.lastStart;
        if (end > minEnd) sink.match(base + start, base + end, pat, end - start);
      } else if (a >= 0 && a + len <= data.length && a + len + this.epoch > this.runEnd[pat]!) {
        if (this.equalAt(pat, len, data, a)) this.run(pat, len, data, a, minEnd, base, sink);
      }
    }
  }

  /** Reports the run of matches of `pat` that starts with the one verified at `a`. */
  private run(
    pat: number,
    len: number,
    data: Uint8Array,
    a: number,
    minEnd: number,
    base: number,
    sink: MatchSink,
  ): void {
    const d = this.period[pat]!;
    let end = a + len;
    if (d < len) {
      let j = end;
      while (j < data.length && data[j] === data[j - d]) j++;
      end += Math.floor((j - end) / d) * d;
    }
    this.runEnd[pat] = end + this.epoch;
    if (end <= minEnd) return;

    // The first match of the run that ends after minEnd (earlier ones were reported before).
    const start = a + len > minEnd ? a : a + Math.ceil((minEnd - a - len + 1) / d) * d;
    sink.match(base + start, base + end, pat, len);
  }

  private equalAt(pat: number, len: number, data: Uint8Array, a: number): boolean {
    const pool = this.table.pool;
    const at = this.exactAt[pat]!;
    for (let k = 0; k < len; k++) {
      if (data[a + k] !== pool[at + k]) return false;
    }
    return true;
  }
}

function pack(bytes: Uint8Array, at: number, q: number): number {
  let gram = 0;
  for (let k = 0; k < q; k++) gram |= bytes[at + k]! << (8 * k);
  return gram | 0;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** Groups item indices by key: items of key k are items[start[k] .. start[k + 1]). */
function csr(keys: readonly number[], size: number): { start: Int32Array; items: Int32Array } {
  const start = new Int32Array(size + 1);
  for (const k of keys) start[k + 1]!++;
  for (let k = 0; k < size; k++) start[k + 1]! += start[k]!;
  const fill = start.slice(0, size);
  const items = new Int32Array(keys.length);
  keys.forEach((k, i) => {
    items[fill[k]!++] = i;
  });
  return { start, items };
}

/** Smallest d > 0 with bytes[i] === bytes[i + d] for every i (KMP failure function). */
function smallestPeriod(bytes: Uint8Array): number {
  const fail = new Int32Array(bytes.length + 1);
  fail[0] = -1;
  for (let i = 1, k = -1; i <= bytes.length; i++) {
    while (k >= 0 && bytes[k] !== bytes[i - 1]) k = fail[k]!;
    fail[i] = ++k;
  }
  return bytes.length - fail[bytes.length]!;
}

function secondSegmentByte(table: PatternTable, i: number): number {
  const seg = table.firstSeg[i]! + 1;
  return table.pool[table.segStart[seg]!]!;
}
