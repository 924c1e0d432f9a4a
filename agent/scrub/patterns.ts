/**
 * The byte patterns the matcher looks for, and how one is checked at a given place.
 *
 * A pattern is a list of segments. One segment is a plain byte string. Several segments match
 * with a run of 0..maxGap whitespace bytes between them: that is how a multi-line value is
 * still found when its newlines became CRLF or spaces. Segments never start or end with
 * whitespace, so the run between two of them can be consumed greedily: the walk is
 * deterministic and linear.
 */

export interface PatternSpec {
  readonly segments: readonly Uint8Array[];
  /** Longest whitespace run allowed between two segments; ignored for one segment. */
  readonly maxGap: number;
}

/** Space, tab, LF, VT, FF and CR. */
export function isSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/** The whitespace bytes, for callers that index patterns by their first two bytes. */
export const SPACE_BYTES: readonly number[] = [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d];

/** A growing set of distinct patterns; identical ones share an id. */
export class PatternSet {
  readonly specs: PatternSpec[] = [];
  private readonly ids = new Map<string, number>();

  /** Returns the pattern's id, and whether it is new. */
  add(spec: PatternSpec): { id: number; added: boolean } {
    checkSpec(spec);
    const gap = spec.segments.length > 1 ? spec.maxGap : 0;
    const key = `${gap}:${spec.segments.map(latin1).join('\u0100')}`;
    const known = this.ids.get(key);
    if (known !== undefined) return { id: known, added: false };

    const id = this.specs.length;
    this.specs.push({ segments: spec.segments.map((s) => s.slice()), maxGap: gap });
    this.ids.set(key, id);
    return { id, added: true };
  }
}

function checkSpec(spec: PatternSpec): void {
  if (spec.segments.length === 0) throw new Error('a pattern needs at least one segment');

  if (!Number.isInteger(spec.maxGap) || spec.maxGap < 0) {
    throw new Error('"maxGap" must be a non-negative integer');
  }

  for (const seg of spec.segments) {
    if (seg.length === 0) throw new Error('a pattern segment must not be empty');

    if (spec.segments.length > 1 && (isSpace(seg[0]!) || isSpace(seg[seg.length - 1]!))) {
      throw new Error('a segment of a multi-segment pattern must not start or end with whitespace');
    }
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/**
 * The patterns packed into flat arrays, with the two checks the matcher needs: a full match
 * around a known anchor, and "could these bytes still become a match".
 */
export class PatternTable {
  readonly count: number;
  /** Every segment's bytes, back to back. */
  readonly pool: Uint8Array;
  readonly segStart: Int32Array;
  readonly segLen: Int32Array;
  /** Per pattern: index of its first segment, how many, which one anchors it, the gap. */
  readonly firstSeg: Int32Array;
  readonly segCount: Int32Array;
  readonly anchorSeg: Int32Array;
  readonly maxGap: Int32Array;
  /** Longest byte length any pattern can match. */
  readonly maxLength: number;
  /** Shortest anchor: the matcher's window. */
  readonly minAnchor: number;
  /** Start of the match found by the last successful `matchAt`. */
  lastStart = 0;

  constructor(specs: readonly PatternSpec[]) {
    this.count = specs.length;
    const segs = specs.flatMap((s) => s.segments);
    this.pool = new Uint8Array(segs.reduce((n, s) => n + s.length, 0));
    this.segStart = new Int32Array(segs.length);
    this.segLen = new Int32Array(segs.length);
    this.firstSeg = new Int32Array(specs.length);
    this.segCount = new Int32Array(specs.length);
    this.anchorSeg = new Int32Array(specs.length);
    this.maxGap = new Int32Array(specs.length);
    let at = 0;
    let seg = 0;
    let maxLength = 0;
    let minAnchor = Number.MAX_SAFE_INTEGER;
    specs.forEach((spec, i) => {
      this.firstSeg[i] = seg;
      this.segCount[i] = spec.segments.length;
      this.maxGap[i] = spec.maxGap;
      let longest = 0;
      let total = spec.maxGap * (spec.segments.length - 1);
      spec.segments.forEach((bytes, k) => {
        this.pool.set(bytes, at);
        this.segStart[seg] = at;
        this.segLen[seg] = bytes.length;
        if (bytes.length > spec.segments[longest]!.length) longest = k;
        total += bytes.length;
        at += bytes.length;
        seg++;
      });
      this.anchorSeg[i] = longest;
      maxLength = Math.max(maxLength, total);
      minAnchor = Math.min(minAnchor, spec.segments[longest]!.length);
    });
    this.maxLength = maxLength;
    this.minAnchor = specs.length === 0 ? 0 : minAnchor;
  }

  /** Pool offset and length of pattern `i`'s anchor segment. */
  anchor(i: number): { at: number; length: number } {
    const seg = this.firstSeg[i]! + this.anchorSeg[i]!;
    return { at: this.segStart[seg]!, length: this.segLen[seg]! };
  }

  /** The first segment of pattern `i`: every string it matches starts with these bytes. */
  firstSegment(i: number): Uint8Array {
    const seg = this.firstSeg[i]!;
    return this.pool.subarray(this.segStart[seg]!, this.segStart[seg]! + this.segLen[seg]!);
  }

  /** True when only exact byte equality is needed (one segment). */
  isExact(i: number): boolean {
    return this.segCount[i] === 1;
  }

  /**
   * End of the match of pattern `i` whose anchor segment starts at `a` in `data`, or -1.
   * On success the match start is left in `lastStart`. The match must lie inside `data`.
   */
  matchAt(i: number, data: Uint8Array, a: number): number {
    const first = this.firstSeg[i]!;
    const anchor = this.anchorSeg[i]!;
    const gap = this.maxGap[i]!;
    if (!this.segmentAt(first + anchor, data, a)) return -1;

    let start = a;
    for (let k = anchor - 1; k >= 0; k--) {
      const q = skipSpaceBack(data, start, gap);
      const len = this.segLen[first + k]!;
      if (q < 0 || !this.segmentAt(first + k, data, q - len)) return -1;
      start = q - len;
    }
    let end = a + this.segLen[first + anchor]!;
    for (let k = anchor + 1; k < this.segCount[i]!; k++) {
      const q = skipSpaceForward(data, end, gap);
      if (q < 0 || !this.segmentAt(first + k, data, q)) return -1;
      end = q + this.segLen[first + k]!;
    }
    this.lastStart = start;
    return end;
  }

  /** Whether `data[p..end)` is a proper prefix of some string pattern `i` matches. */
  prefixAt(i: number, data: Uint8Array, p: number, end: number): boolean {
    const first = this.firstSeg[i]!;
    const gap = this.maxGap[i]!;
    const pool = this.pool;
    let pos = p;
    for (let k = 0; k < this.segCount[i]!; k++) {
      if (k > 0) {
        for (let run = 0; pos < end && isSpace(data[pos]!); run++, pos++) {
          if (run === gap) return false;
        }
      }
      const from = this.segStart[first + k]!;
      const to = from + this.segLen[first + k]!;
      for (let s = from; s < to; s++, pos++) {
        if (pos === end) return true;
        if (data[pos] !== pool[s]) return false;
      }
    }
    return false;
  }

  private segmentAt(seg: number, data: Uint8Array, at: number): boolean {
    const len = this.segLen[seg]!;
    if (at < 0 || at + len > data.length) return false;

    const from = this.segStart[seg]!;
    const pool = this.pool;
    for (let k = 0; k < len; k++) {
      if (data[at + k] !== pool[from + k]) return false;
    }
    return true;
  }
}

/** Start of the whitespace run that ends at `pos`, or -1 when it is longer than `gap`. */
function skipSpaceBack(data: Uint8Array, pos: number, gap: number): number {
  let q = pos;
  while (q > 0 && isSpace(data[q - 1]!)) {
    q--;
    if (pos - q > gap) return -1;
  }
  return q;
}

/** End of the whitespace run that starts at `pos`, or -1 when it is longer than `gap`. */
function skipSpaceForward(data: Uint8Array, pos: number, gap: number): number {
  let q = pos;
  while (q < data.length && isSpace(data[q]!)) {
    q++;
    if (q - pos > gap) return -1;
  }
  return q;
}
