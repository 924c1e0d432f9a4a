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
 *    set in two hashed bit filters (one per hash) and kept in a bucket as (gram, pattern, o).
 * 4. Sample. Test the first filter with the q-gram at each sample: one load, one multiply and
 *    one bit test per T bytes, four samples per branch. The samples that pass are noted and, in
 *    a second loop, tested against the second filter; that drops most false hits before they
 *    touch a bucket. The sampling loop stays small and calls nothing.
 * 5. Verify. On a hit, every bucket entry with that exact gram names a candidate anchor start
 *    p - o; check the pattern there: its last byte first (patterns that share a prefix differ
 *    there), then aligned 32-bit words of the text against the pattern's words at the same
 *    shift. A (pattern, start) pair is proposed by one sample only, so nothing is reported
 *    twice. A periodic pattern (period d shorter than its length, as in `aaaa…`) that matches is
 *    followed while the text keeps period d, and the whole run of overlapping matches is
 *    reported once (its union, named by its first match); later candidates inside the run are
 *    skipped. A run of overlapping matches costs O(1) per byte.
 * 6. Tail. For streaming, find the earliest position in the last maxLength - 1 bytes from which
 *    the rest of the buffer is a proper prefix of some pattern (a table keyed by each pattern's
 *    first two bytes proposes the candidates, after a filter of their first four bytes).
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
/** Multiplier of the second hash: a sample is verified only when both filters say yes. */
const GOLDEN2 = 0x85ebca6b | 0;
/** Size (log2 bits) of the filter of the patterns' first four bytes, used by `partial`. */
const QUAD_BITS = 15;
/** Fields of a record in `Matcher.recs`; its whole words follow. */
const REC_LENGTH = 0; // 0 for a pattern of several segments
const REC_PATTERN = 1;
const REC_PERIOD = 2;
const REC_POOL = 3;
const REC_HEAD = 4;
const REC_TAIL = 5;
const REC_WORDS = 6;
const REC_SIZE = 7;
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
  /** Two hashed bit filters of the indexed q-grams (a Bloom filter with two hashes). */
  private readonly filter: Int32Array;
  private readonly filter2: Int32Array;
  private readonly bucketStart: Int32Array;
  /**
   * Bucket entries, interleaved: (gram, record offset in `recs`, anchor offset o, span) per
   * entry. Inside a bucket, the entries of one gram and one pattern are together, by decreasing
   * offset (so by increasing candidate start); span counts the entry and those after it in its
   * group, so that a group of candidates inside one run is skipped at once.
   */
  private readonly entries: Int32Array;
  /**
   * One record per pattern and shift r = o & 3, laid out so that verifying a candidate reads
   * one or two cache lines: REC_* fields, then the pattern's whole 32-bit words from its byte r
   * on. On the word path a sample sits on an aligned word, so a candidate from an entry with
   * offset o starts r bytes before an aligned word of the text: bytes 0 to r - 1 of the pattern
   * are `REC_HEAD`, then come the words, then the last 0 to 3 bytes, `REC_TAIL`.
   */
  private readonly recs: Int32Array;
  /**
   * Per periodic one-segment pattern: the end of its last run and the scan it was found in;
   * later candidates inside the run are skipped. A pattern that is not periodic cannot have two
   * matches in one run. Scans are numbered so that each starts clean without clearing these.
   */
  private readonly runEnd: Int32Array;
  private readonly runScan: Int32Array;
  private scanId = 0;
  /** Word indices of the samples that passed both filters in the current scan. */
  private hits = new Int32Array(0);
  private readonly pairStart: Int32Array;
  private readonly pairPat: Int32Array;
  /** One bit per first-two-bytes key with candidates: a small table that stays in cache. */
  private readonly pairAny: Int32Array;
  /**
   * Bit filter of the first four bytes of every pattern whose first segment has four, and the
   * pair keys of the patterns whose first segment is shorter (the filter cannot rule those out).
   */
  private readonly quadAny: Int32Array;
  private readonly pairShort: Int32Array;
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

    // Records: per pattern and shift.
    this.runEnd = new Int32Array(table.count);
    this.runScan = new Int32Array(table.count);
    const recs: number[] = [];
    const recOf: number[] = [];
    for (let i = 0; i < table.count; i++) {
      const exact = table.isExact(i);
      const { at, length } = table.anchor(i);
      const period = exact ? smallestPeriod(table.pool.subarray(at, at + length)) : 0;
      for (let r = 0; r < 4; r++) {
        recOf.push(recs.length);
        const count = exact && length > r ? (length - r) >>> 2 : 0;
        const tail = r + 4 * count;
        recs.push(exact ? length : 0, i, period, at);
        recs.push(pack(table.pool, at, Math.min(r, length)));
        recs.push(pack(table.pool, at + tail, Math.max(0, length - tail)), count);
        for (let k = 0; k < count; k++) recs.push(pack(table.pool, at + r + 4 * k, 4));
      }
    }
    this.recs = Int32Array.from(recs);

    // 3. Index
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
    const bBits = clamp(fBits - 6, 8, 16);
    this.fShift = 32 - fBits;
    this.bShift = fBits - bBits;
    this.filter = new Int32Array(1 << (fBits - 5));
    this.filter2 = new Int32Array(1 << (fBits - 5));
    const buckets = grams.map((g) => {
      const h = Math.imul(g, GOLDEN) >>> this.fShift;
      const h2 = Math.imul(g, GOLDEN2) >>> this.fShift;
      this.filter[h >>> 5]! |= 1 << (h & 31);
      this.filter2[h2 >>> 5]! |= 1 << (h2 & 31);
      return h >>> this.bShift;
    });
    const order = csr(buckets, 1 << bBits);
    this.bucketStart = order.start;
    const items = order.items;
    for (let b = 0; b < 1 << bBits; b++) {
      items
        .subarray(order.start[b]!, order.start[b + 1]!)
        .sort((x, y) => grams[x]! - grams[y]! || pats[x]! - pats[y]! || offs[y]! - offs[x]!);
    }
    this.entries = new Int32Array(4 * items.length);
    for (let e = items.length - 1; e >= 0; e--) {
      const k = items[e]!;
      const next = items[e + 1];
      const same = next !== undefined && grams[next] === grams[k] && pats[next] === pats[k];
      this.entries[4 * e] = grams[k]!;
      this.entries[4 * e + 1] = recOf[4 * pats[k]! + (offs[k]! & 3)]!;
      this.entries[4 * e + 2] = offs[k]!;
      this.entries[4 * e + 3] = same ? this.entries[4 * e + 7]! + 1 : 1;
    }

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
    this.quadAny = new Int32Array(1 << (QUAD_BITS - 5));
    this.pairShort = new Int32Array(1 << 11);
    pairKeys.forEach((k, n) => {
      const head = table.firstSegment(pairPats[n]!);
      if (head.length < 4) {
        this.pairShort[k >>> 5]! |= 1 << (k & 31);
      } else {
        const h = Math.imul(pack(head, 0, 4), GOLDEN) >>> (32 - QUAD_BITS);
        this.quadAny[h >>> 5]! |= 1 << (h & 31);
      }
    });
    const bytes = csr(byteKeys, 256);
    this.byteStart = bytes.start;
    this.bytePat = Int32Array.from(bytes.items, (k) => bytePats[k]!);
  }

  /**
   * Reports every occurrence inside `data` that ends after `minEnd`, shifted by `base`.
   */
  scan(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    if (this.table.count === 0 || data.length < this.table.minAnchor) return;

    if (++this.scanId === 0x40000000) {
      this.scanId = 1;
      this.runScan.fill(0);
    }
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
      if (p + 4 <= end && (this.pairShort[key >>> 5]! & (1 << (key & 31))) === 0) {
        const quad = key | (data[p + 2]! << 16) | (data[p + 3]! << 24);
        const h = Math.imul(quad, GOLDEN) >>> (32 - QUAD_BITS);
        if (((this.quadAny[h >>> 5]! >>> h) & 1) === 0) continue;
      }
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

  // 4. Sample, reading aligned 32-bit words. The loop only tests the first filter, four samples
  // at a time, and notes the samples that pass; they are verified afterwards, in order.
  private scanWords(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    const first = (4 - (data.byteOffset & 3)) & 3;
    const count = (data.length - first) >>> 2;
    if (count <= 0) return;

    const words = new Int32Array(data.buffer, data.byteOffset + first, count);
    const step = this.stride >>> 2;
    if (this.hits.length < Math.ceil(count / step) + 4) {
      this.hits = new Int32Array(Math.ceil(count / step) + 4);
    }
    const hits = this.hits;
    const filter = this.filter;
    const shift = this.fShift;
    let n = 0;
    let w = 0;
    // A shift count is taken modulo 32, so `filter[h >>> 5] >>> h` brings bit h & 31 down.
    for (const stop = count - 3 * step; w < stop; w += 4 * step) {
      const h0 = Math.imul(words[w]!, GOLDEN) >>> shift;
      const h1 = Math.imul(words[w + step]!, GOLDEN) >>> shift;
      const h2 = Math.imul(words[w + 2 * step]!, GOLDEN) >>> shift;
      const h3 = Math.imul(words[w + 3 * step]!, GOLDEN) >>> shift;
      const b0 = filter[h0 >>> 5]! >>> h0;
      const b1 = filter[h1 >>> 5]! >>> h1;
      const b2 = filter[h2 >>> 5]! >>> h2;
      const b3 = filter[h3 >>> 5]! >>> h3;
      if (((b0 | b1 | b2 | b3) & 1) === 0) continue;

      hits[n] = w;
      n += b0 & 1;
      hits[n] = w + step;
      n += b1 & 1;
      hits[n] = w + 2 * step;
      n += b2 & 1;
      hits[n] = w + 3 * step;
      n += b3 & 1;
    }
    for (; w < count; w += step) {
      const h = Math.imul(words[w]!, GOLDEN) >>> shift;
      hits[n] = w;
      n += (filter[h >>> 5]! >>> h) & 1;
    }

    const filter2 = this.filter2;
    for (let i = 0; i < n; i++) {
      const gram = words[hits[i]!]!;
      const h2 = Math.imul(gram, GOLDEN2) >>> shift;
      if (((filter2[h2 >>> 5]! >>> h2) & 1) === 0) continue;
      const h = Math.imul(gram, GOLDEN) >>> shift;
      this.verify(data, words, first, first + 4 * hits[i]!, gram, h, minEnd, base, sink);
    }
  }

  // 4. Sample, one byte at a time (short anchors or a big-endian host).
  private scanBytes(data: Uint8Array, minEnd: number, base: number, sink: MatchSink): void {
    const q = this.q;
    for (let p = 0; p + q <= data.length; p += this.stride) {
      const gram = pack(data, p, q);
      const h = Math.imul(gram, GOLDEN) >>> this.fShift;
      const h2 = Math.imul(gram, GOLDEN2) >>> this.fShift;
      if (((this.filter[h >>> 5]! >>> h) & (this.filter2[h2 >>> 5]! >>> h2) & 1) !== 0) {
        this.verify(data, null, 0, p, gram, h, minEnd, base, sink);
      }
    }
  }

  // 5. Verify. `words`, when given, are the aligned words of `data` from offset `first`, and
  // p is on one of them.
  private verify(
    data: Uint8Array,
    words: Int32Array | null,
    first: number,
    p: number,
    gram: number,
    h: number,
    minEnd: number,
    base: number,
    sink: MatchSink,
  ): void {
    const b = h >>> this.bShift;
    const entries = this.entries;
    const recs = this.recs;
    const last = 4 * this.bucketStart[b + 1]!;
    for (let e = 4 * this.bucketStart[b]!; e < last; e += 4) {
      if (entries[e] !== gram) continue;
      const rec = entries[e + 1]!;
      const a = p - entries[e + 2]!;
      const len = recs[rec + REC_LENGTH]!;
      const pat = recs[rec + REC_PATTERN]!;
      if (len === 0) {
        const end = this.table.matchAt(pat, data, a);
        const start = this.table.lastStart;
        if (end > minEnd) sink.match(base + start, base + end, pat, end - start);
        continue;
      }
      // Only a periodic pattern can have a candidate inside its last run; when the group's last
      // candidate (the one that starts last) is inside, the whole group is.
      const period = recs[rec + REC_PERIOD]!;
      if (period < len && this.runScan[pat] === this.scanId) {
        const skip = 4 * (entries[e + 3]! - 1);
        if (p - entries[e + skip + 2]! + len <= this.runEnd[pat]!) {
          e += skip;
          continue;
        }
        if (a + len <= this.runEnd[pat]!) continue;
      }
      if (a < 0 || a + len > data.length) continue;
      const equal =
        words === null
          ? this.equalBytes(rec, data, a)
          : this.equalWords(rec, data, words, first, a);
      if (equal) this.run(pat, len, period, data, words, first, a, minEnd, base, sink);
    }
  }

  /**
   * Whether the pattern of record `rec` occurs at `a`, where a + r is on an aligned word: the
   * last whole word first (patterns that share a prefix differ there), the bytes before and
   * after the words, then the other words.
   */
  private equalWords(
    rec: number,
    data: Uint8Array,
    words: Int32Array,
    first: number,
    a: number,
  ): boolean {
    const recs = this.recs;
    const count = recs[rec + REC_WORDS]!;
    const w0 = (a - first + 3) >>> 2;
    const at = rec + REC_SIZE;
    if (count > 0 && words[w0 + count - 1] !== recs[at + count - 1]) return false;

    const x = first + 4 * w0;
    const head = recs[rec + REC_HEAD]!;
    for (let k = a; k < x; k++) if (data[k] !== ((head >>> (8 * (k - a))) & 255)) return false;
    const y = x + 4 * count;
    const tail = recs[rec + REC_TAIL]!;
    const end = a + recs[rec + REC_LENGTH]!;
    for (let k = y; k < end; k++) if (data[k] !== ((tail >>> (8 * (k - y))) & 255)) return false;
    for (let j = 0; j < count - 1; j++) if (words[w0 + j] !== recs[at + j]) return false;
    return true;
  }

  /** Whether the pattern of record `rec` occurs at `a`: its last byte first, then the rest. */
  private equalBytes(rec: number, data: Uint8Array, a: number): boolean {
    const pool = this.table.pool;
    const at = this.recs[rec + REC_POOL]! - a;
    const end = a + this.recs[rec + REC_LENGTH]!;
    if (data[end - 1] !== pool[at + end - 1]) return false;
    for (let k = a; k < end - 1; k++) if (data[k] !== pool[at + k]) return false;
    return true;
  }

  /** Reports the run of matches of `pat` that starts with the one verified at `a`. */
  private run(
    pat: number,
    len: number,
    d: number,
    data: Uint8Array,
    words: Int32Array | null,
    first: number,
    a: number,
    minEnd: number,
    base: number,
    sink: MatchSink,
  ): void {
    let end = a + len;
    if (d < len) {
      const n = data.length;
      let j = end;
      if (words !== null && 4 * d <= len) {
        // The match holds 4d bytes of period d, so the text keeps period d exactly as long as it
        // keeps period 4d: compare whole words d words apart, the bytes around them alone.
        while (j < n && ((j - first) & 3) !== 0 && data[j] === data[j - 4 * d]) j++;
        if (((j - first) & 3) === 0) {
          let w = (j - first) >>> 2;
          while (w < words.length && words[w] === words[w - d]) w++;
          j = first + 4 * w;
        }
        while (j < n && data[j] === data[j - 4 * d]) j++;
      } else {
        while (j < n && data[j] === data[j - d]) j++;
      }
      end += Math.floor((j - end) / d) * d;
      this.runEnd[pat] = end;
      this.runScan[pat] = this.scanId;
    }
    if (end <= minEnd) return;

    // The first match of the run that ends after minEnd (earlier ones were reported before).
    const start = a + len > minEnd ? a : a + Math.ceil((minEnd - a - len + 1) / d) * d;
    sink.match(base + start, base + end, pat, len);
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
