/**
 * Policy: what gets registered for a set of variables. Plain (non-sensitive) variables are never
 * scrubbed. A sensitive value shorter than the minimum length is not registered, and a warning
 * names the variable; no warning ever carries a value.
 *
 * Why a minimum length: a short value ("1", "true", "docker") also occurs in unrelated text, and
 * masking it there both corrupts output and reveals where the secret is used. Eight bytes keeps
 * real tokens and drops these.
 */
import { type Piece, type PieceOptions, piecesFor } from './pieces.js';

export interface SecretEntry {
  readonly name: string;
  readonly value: string;
  readonly sensitive: boolean;
  /** Opaque label carried to whoever counts this value's replacements (labelOf). */
  readonly tag?: string;
}

export interface ScrubWarning {
  readonly name: string;
  readonly reason: string;
}

export interface PolicyOptions extends PieceOptions {
  /** Longest piece, in bytes; a stream holds back up to this much, so it bounds memory. */
  readonly maxPieceLength: number;
}

export const DEFAULT_POLICY: PolicyOptions = { minLength: 8, maxGap: 32, maxPieceLength: 65536 };

export interface PlannedSecret {
  readonly name: string;
  readonly tag: string;
  readonly pieces: readonly Piece[];
}

export interface ScrubPlan {
  readonly secrets: readonly PlannedSecret[];
  readonly warnings: readonly ScrubWarning[];
}

export function planSecrets(entries: readonly SecretEntry[], opts: PolicyOptions): ScrubPlan {
  const secrets: PlannedSecret[] = [];
  const warnings: ScrubWarning[] = [];
  for (const { name, value, sensitive, tag = '' } of entries) {
    if (!sensitive) continue;

    if (Buffer.byteLength(value.trim(), 'utf8') < opts.minLength) {
      warnings.push({
        name,
        reason: `value is shorter than ${opts.minLength} bytes; not scrubbed`,
      });
      continue;
    }

    const all = piecesFor(value, opts);
    const pieces = all.filter((p) => pieceLength(p) <= opts.maxPieceLength);
    if (pieces.length < all.length) {
      const dropped = all.length - pieces.length;
      const reason = `${dropped} forms are longer than ${opts.maxPieceLength} bytes; not scrubbed`;
      warnings.push({ name, reason });
    }
    secrets.push({ name, tag, pieces });
  }
  return { secrets, warnings };
}

/** Most bytes a piece can match. */
export function pieceLength(piece: Piece): number {
  const { segments, maxGap } = piece.spec;
  const bytes = segments.reduce((n, s) => n + s.length, 0);
  return bytes + maxGap * (segments.length - 1);
}
