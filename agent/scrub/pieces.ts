/**
 * Policy: which byte strings stand for a value in output. See docs/scrubber.md for the table.
 *
 * For the value and its trimmed form: the bytes, the JSON escapes, the URL encodings and the
 * base64 windows. For a multi-line value: its lines joined by any whitespace run, and each
 * line. For a JSON object, a dotenv blob or a URL with credentials: the same for each leaf.
 * Pieces shorter than the minimum length are dropped: they would mask unrelated text.
 */
import { base64Lines, base64Windows, distinct, jsonEscapes, urlEncodings } from './encodings.js';
import { dotenvLeaves, jsonLeaves, urlSecrets } from './leaves.js';
import type { PatternSpec } from './patterns.js';

export interface PieceOptions {
  /** Shortest piece, in bytes, worth scrubbing. */
  readonly minLength: number;
  /** Longest whitespace run matched between the lines of a multi-line value. */
  readonly maxGap: number;
}

export interface Piece {
  /** How the piece derives from the value, e.g. `json`, `base64`, `leaf url`. */
  readonly form: string;
  readonly spec: PatternSpec;
}

/** Leaves inside leaves are followed this deep (a URL inside a JSON credential file). */
const MAX_DEPTH = 2;

export function piecesFor(value: string, opts: PieceOptions): Piece[] {
  const pieces = new PieceList(opts);
  addValue(pieces, value, '', 0);
  return pieces.items;
}

function addValue(pieces: PieceList, value: string, origin: string, depth: number): void {
  const trimmed = value.trim();
  for (const v of distinct([value, trimmed])) {
    pieces.text(`${origin}${v === value ? 'raw' : 'trimmed'}`, v);
    for (const s of jsonEscapes(v)) pieces.text(`${origin}json`, s);
    for (const s of urlEncodings(v)) pieces.text(`${origin}url`, s);
    const windows = base64Windows(Buffer.from(v, 'utf8'));
    for (const s of windows) pieces.text(`${origin}base64`, s);
    pieces.lines(`${origin}base64 lines`, base64Lines(windows[0] ?? ''));
  }

  const lines = trimmed
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (lines.length > 1) {
    pieces.lines(`${origin}lines`, lines);
    for (const line of lines) {
      pieces.text(`${origin}line`, line);
      for (const s of jsonEscapes(line)) pieces.text(`${origin}line json`, s);
    }
  }

  if (depth >= MAX_DEPTH) return;

  const leaves = [...jsonLeaves(trimmed), ...dotenvLeaves(trimmed), ...urlSecrets(trimmed)];
  for (const leaf of distinct(leaves)) {
    if (leaf !== value && leaf !== trimmed) addValue(pieces, leaf, 'leaf ', depth + 1);
  }
}

class PieceList {
  readonly items: Piece[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly opts: PieceOptions) {}

  text(form: string, text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length < this.opts.minLength) return;

    this.push(form, { segments: [bytes], maxGap: 0 }, `1:${text}`);
  }

  /** Lines matched across whitespace runs; needs a line long enough to anchor the match. */
  lines(form: string, lines: readonly string[]): void {
    if (lines.length < 2) return;

    const segments = lines.map((line) => Buffer.from(line, 'utf8'));
    if (!segments.some((s) => s.length >= this.opts.minLength)) return;

    this.push(form, { segments, maxGap: this.opts.maxGap }, `n:${JSON.stringify(lines)}`);
  }

  private push(form: string, spec: PatternSpec, key: string): void {
    if (this.seen.has(key)) return;

    this.seen.add(key);
    this.items.push({ form, spec });
  }
}
