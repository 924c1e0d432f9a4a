/** Small byte helpers shared by the streams. */

export const EMPTY = Buffer.alloc(0);

/** A fresh copy of `bytes[from..)`, never a view. */
export function copyTail(bytes: Uint8Array, from: number): Uint8Array {
  const out = new Uint8Array(bytes.length - from);
  out.set(bytes.subarray(from));
  return out;
}

/** Joins parts without copying when there is only one. */
export function join(parts: readonly Uint8Array[]): Buffer {
  if (parts.length === 0) return EMPTY;

  if (parts.length === 1) {
    const p = parts[0]!;
    return Buffer.from(p.buffer, p.byteOffset, p.length);
  }
  return Buffer.concat(parts);
}

/**
 * `end`, or the start of an incomplete UTF-8 sequence that ends the bytes before `end`, so that
 * a cut there never splits a character.
 */
export function utf8Cut(bytes: Uint8Array, end: number): number {
  for (let k = 1; k <= 3 && end - k >= 0; k++) {
    const b = bytes[end - k]!;
    if ((b & 0xc0) === 0x80) continue;

    if (b < 0xc0) return end;

    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return k < need ? end - k : end;
  }
  return end;
}
