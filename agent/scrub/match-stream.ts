/**
 * One output stream over a shared, growing set of patterns. Bytes go in as they come; bytes
 * come out as soon as no match can still cover them, with every match replaced by a marker.
 *
 * 1. Scan. A write is scanned together with the bytes kept from before, and only matches that
 *    end in the new bytes are taken, so each match is seen once whatever the chunking. When
 *    patterns were added since the last scan, the kept bytes not yet emitted are scanned again.
 * 2. Hold. The hold point is the earliest position from which the tail is a proper prefix of
 *    some pattern. Nothing at or after it is emitted yet.
 * 3. Emit. A group that ends at or before the hold point can no longer grow: emit the plain bytes
 *    before it, then its marker. Plain bytes are emitted up to the hold point or up to the first
 *    group that may still grow, whichever comes first.
 * 4. Keep. The last maxLength - 1 bytes are kept for the next write. A group keeps only its bounds,
 *    never its bytes, so a run of overlapping matches costs constant memory.
 * 5. Flush (idle) and end. The held tail is released: masked when it is at least `maskFrom`
 *    bytes long, plain otherwise. After an idle flush the kept bytes stay, so a match completing
 *    later still masks the rest of its bytes; an idle flush never splits a UTF-8 character.
 */
import { EMPTY, utf8Cut } from './bytes.js';
import { Groups, type LabelOrder } from './groups.js';
import type { Matcher, MatchSink } from './matcher.js';

/** What a stream needs from the registry of patterns. */
export interface PatternSource {
  /** Changes whenever patterns are added. */
  readonly version: number;
  matcher(): Matcher;
  readonly compareLabels: LabelOrder;
  marker(pattern: number): Uint8Array;
}

export class MatchStream implements MatchSink {
  /** Bytes written so far; positions below are absolute stream offsets. */
  private pos = 0;
  /** Everything before `out` has been emitted (as bytes or inside a marker). */
  private out = 0;
  /** End of the last marker emitted; lets a match that completes after a flush stay silent. */
  private maskedTo = -1;
  private kept: Uint8Array = EMPTY;
  private version = -1;
  private ended = false;
  private readonly groups: Groups;
  private partialPattern = -1;
  // The bytes of the current call: `prev` then `cur`, contiguous.
  private prev: Uint8Array = EMPTY;
  private prevStart = 0;
  private cur: Uint8Array = EMPTY;
  private curStart = 0;
  private layout: number[] = [];
  private scratch = new Uint8Array(0);
  // The output of the current call: `outCount` ranges of source bytes, copied once at the end.
  private readonly outSrc: Uint8Array[] = [];
  private readonly outFrom: number[] = [];
  private readonly outLength: number[] = [];
  private outCount = 0;
  private outBytes = 0;

  constructor(
    private readonly source: PatternSource,
    private readonly maskFrom: number,
    private readonly onMask?: (pattern: number) => void,
  ) {
    this.groups = new Groups(source.compareLabels);
  }

  /** Bytes written but not yet emitted (held, or inside a group still open). */
  get held(): number {
    return this.pos - this.out;
  }

  /** Bytes written so far. */
  get written(): number {
    return this.pos;
  }

  /**
   * Where the output of the last call came from: triples of (input offset, output length,
   * 1 for plain bytes or 0 for a marker). A marker's input offset is where its group starts.
   */
  get lastLayout(): readonly number[] {
    return this.layout;
  }

  /** Returns the bytes that are safe to emit now. */
  write(input: Uint8Array): Buffer {
    this.assertOpen();
    // A plain Uint8Array view: every byte access and subarray below then sees one type.
    const chunk =
      input.constructor === Uint8Array
        ? input
        : new Uint8Array(input.buffer, input.byteOffset, input.length);
    const m = this.source.matcher();
    const keep = Math.max(0, m.maxLength - 1);
    const kept = this.kept;
    const base = this.pos - kept.length;

    // 1. Scan
    const headLength = Math.min(chunk.length, keep);
    const headChunk = chunk.subarray(0, headLength);
    const head = kept.length === 0 ? headChunk : this.joinHead(kept, headChunk);
    const rescan = this.version !== this.source.version;
    m.scan(head, rescan ? Math.max(0, this.out - base) : kept.length, base, this);
    if (chunk.length > headLength) m.scan(chunk, headLength, this.pos, this);
    this.version = this.source.version;

    // 2. Hold
    const whole = chunk.length >= keep;
    const tail = whole ? chunk : head;
    const tailBase = whole ? this.pos : base;
    this.partialPattern = -1;
    const p = m.partial(tail, tail.length, this);

    // 3. Emit
    this.setBytes(kept, base, chunk);
    this.pos += chunk.length;
    const emitted = this.emitUpTo(p < 0 ? this.pos : tailBase + p);

    // 4. Keep
    // A fresh copy each time, never a view of the caller's chunk. (Reusing one buffer here was
    // measured slower: with no small allocation between the 64 KiB outputs, glibc gives the
    // freed outputs back to the system and every new output page faults again.)
    this.kept = tail.slice(Math.max(0, tail.length - keep));
    return emitted;
  }

  /** Idle flush: releases everything held (step 5); the stream stays usable. */
  flush(): Buffer {
    this.assertOpen();
    const hold = this.settle();
    const cut = this.pos - this.kept.length + utf8Cut(this.kept, this.kept.length);
    if (hold >= 0 && this.pos - hold >= this.maskFrom && cut > hold) {
      this.groups.add(hold, cut, this.partialPattern);
    }
    return this.emitUpTo(cut);
  }

  /** End of stream: releases everything (step 5); later writes throw. */
  end(): Buffer {
    this.assertOpen();
    const hold = this.settle();
    if (hold >= 0 && this.pos - hold >= this.maskFrom) {
      this.groups.add(hold, this.pos, this.partialPattern);
    }
    const emitted = this.emitUpTo(this.pos);
    this.ended = true;
    this.kept = EMPTY;
    return emitted;
  }

  match(start: number, end: number, pattern: number, length: number): void {
    if (end > this.out) this.groups.add(start, end, pattern, length);
  }

  partial(pattern: number): void {
    const best = this.partialPattern;
    if (best < 0 || this.source.compareLabels(pattern, best) < 0) this.partialPattern = pattern;
  }

  /** Scans the kept bytes again if patterns were added; returns the hold point or -1. */
  private settle(): number {
    const m = this.source.matcher();
    const base = this.pos - this.kept.length;
    if (this.version !== this.source.version) {
      m.scan(this.kept, Math.max(0, this.out - base), base, this);
      this.version = this.source.version;
    }
    this.setBytes(this.kept, base, EMPTY);
    this.partialPattern = -1;
    const p = m.partial(this.kept, this.kept.length, this);
    return p < 0 ? -1 : base + p;
  }

  // 3. Emit
  private emitUpTo(limit: number): Buffer {
    this.outCount = 0;
    this.outBytes = 0;
    this.layout = [];
    for (let g = this.groups.first; g !== undefined && g.end <= limit; g = this.groups.first) {
      this.plain(g.start);
      const silent = g.start < this.out && this.maskedTo === this.out;
      if (!silent) {
        const marker = this.source.marker(g.winPattern);
        this.part(marker, 0, marker.length);
        this.layout.push(g.start, marker.length, 0);
        this.onMask?.(g.winPattern);
      }
      this.out = Math.max(this.out, g.end);
      this.maskedTo = this.out;
      this.groups.shift();
    }
    const open = this.groups.first;
    this.plain(open === undefined ? limit : Math.min(limit, open.start));
    return this.assemble();
  }

  /** Emits the plain bytes from `out` up to `to`. */
  private plain(to: number): void {
    if (to <= this.out) return;

    const cut = this.curStart;
    if (this.out < cut) {
      const from = this.out - this.prevStart;
      this.part(this.prev, from, Math.min(to, cut) - this.prevStart - from);
    }
    if (to > cut) {
      const from = Math.max(this.out, cut) - cut;
      this.part(this.cur, from, to - cut - from);
    }
    this.layout.push(this.out, to - this.out, 1);
    this.out = to;
  }

  private part(src: Uint8Array, from: number, length: number): void {
    const i = this.outCount++;
    this.outSrc[i] = src;
    this.outFrom[i] = from;
    this.outLength[i] = length;
    this.outBytes += length;
  }

  /**
   * The output of this call in one buffer. Bytes that are all from the caller's chunk come back
   * as a view of it; anything else is copied once into a new buffer.
   */
  private assemble(): Buffer {
    const count = this.outCount;
    if (count === 0) return EMPTY;

    const src0 = this.outSrc[0]!;
    if (count === 1 && src0 === this.cur) {
      this.outSrc[0] = EMPTY;
      return Buffer.from(src0.buffer, src0.byteOffset + this.outFrom[0]!, this.outLength[0]!);
    }
    const out = Buffer.allocUnsafe(this.outBytes);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const src = this.outSrc[i]!;
      const from = this.outFrom[i]!;
      const length = this.outLength[i]!;
      out.set(from === 0 && length === src.length ? src : src.subarray(from, from + length), at);
      at += length;
      this.outSrc[i] = EMPTY; // keeps no caller's chunk alive
    }
    return out;
  }

  /** `kept` then `next` in a scratch buffer reused across writes (only scanned, never emitted). */
  private joinHead(kept: Uint8Array, next: Uint8Array): Uint8Array {
    const size = kept.length + next.length;
    if (this.scratch.length < size)
      this.scratch = new Uint8Array(Math.max(size, 2 * this.scratch.length));
    this.scratch.set(kept);
    this.scratch.set(next, kept.length);
    return this.scratch.subarray(0, size);
  }

  private setBytes(prev: Uint8Array, prevStart: number, cur: Uint8Array): void {
    this.prev = prev;
    this.prevStart = prevStart;
    this.cur = cur;
    this.curStart = prevStart + prev.length;
  }

  private assertOpen(): void {
    if (this.ended) throw new Error('the scrub stream has ended');
  }
}
