/**
 * A scrub stream over text pieces (trajectory deltas) rather than bytes. Output comes back as
 * pieces tagged with the input offset they stand for, so a caller can give each piece back to
 * the record its bytes came from. A trailing high surrogate waits for its pair, so an emoji split
 * across two deltas is encoded whole.
 */
import type { ScrubStream } from './scrubber.js';

export interface TextPiece {
  /** Input offset (in UTF-8 bytes) the piece starts at; for a marker, where its match starts. */
  readonly at: number;
  readonly text: string;
  /** Plain input bytes, which may be cut at any input offset inside; false for a marker. */
  readonly plain: boolean;
}

export class TextScrubStream {
  private lone = '';

  constructor(private readonly bytes: ScrubStream) {}

  /** Input bytes written so far (a waiting lone surrogate not included). */
  get written(): number {
    return this.bytes.written;
  }

  /** Input offset up to which everything has been emitted. */
  get emitted(): number {
    return this.bytes.written - this.bytes.held;
  }

  get held(): number {
    return this.bytes.held + this.lone.length;
  }

  write(text: string): TextPiece[] {
    let t = this.lone + text;
    this.lone = '';
    const last = t.charCodeAt(t.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.lone = t.slice(-1);
      t = t.slice(0, -1);
    }
    return this.pieces(this.bytes.write(Buffer.from(t, 'utf8')));
  }

  flush(): TextPiece[] {
    return this.withLone(this.pieces(this.bytes.flush()));
  }

  end(): TextPiece[] {
    return this.withLone(this.pieces(this.bytes.end()));
  }

  private pieces(out: Buffer): TextPiece[] {
    const layout = this.bytes.lastLayout;
    const pieces: TextPiece[] = [];
    for (let k = 0, from = 0; k < layout.length; k += 3) {
      const to = from + layout[k + 1]!;
      pieces.push({
        at: layout[k]!,
        text: out.toString('utf8', from, to),
        plain: layout[k + 2] === 1,
      });
      from = to;
    }
    return pieces;
  }

  private withLone(pieces: TextPiece[]): TextPiece[] {
    if (this.lone.length === 0) return pieces;

    pieces.push({ at: this.bytes.written, text: this.lone, plain: false });
    this.lone = '';
    return pieces;
  }
}
