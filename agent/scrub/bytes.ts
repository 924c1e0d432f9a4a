/** Small byte helpers shared by the streams. */

export const EMPTY = Buffer.alloc(0);

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
