import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { markerName } from '../../agent/scrub/marker.js';
import { DEFAULT_POLICY, planSecrets, type SecretEntry } from '../../agent/scrub/policy.js';
import type { ScrubStream } from '../../agent/scrub/scrubber.js';
import type { RefPattern } from './reference.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
/** The shared corpus beside the checkout, when there is one. */
export const SHARED = join(HERE, '../../../shared');
export const HAS_SHARED = existsSync(join(SHARED, 'cases/scrub-cases.json'));

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Markers written as `[REDACTED]`, as in the case file. */
export function normalise(text: string): string {
  return text.replace(/\[REDACTED(?::[A-Za-z0-9_.-]*)?\]/g, '[REDACTED]');
}

export const defaultMarker = (name: string): string => `[REDACTED:${markerName(name)}]`;

export function refPatterns(entries: readonly SecretEntry[]): RefPattern[] {
  return planSecrets(entries, DEFAULT_POLICY).secrets.flatMap(({ name, pieces }) =>
    pieces.map(({ spec }) => ({ name, segments: spec.segments, maxGap: spec.maxGap })),
  );
}

/** Writes `input` cut at `cuts` (sorted, inside the input), then ends the stream. */
export function writeCut(stream: ScrubStream, input: Uint8Array, cuts: readonly number[]): Buffer {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    parts.push(stream.write(input.subarray(at, cut)));
    at = cut;
  }
  parts.push(stream.end());
  return Buffer.concat(parts);
}

export function writeAll(stream: ScrubStream, writes: readonly string[]): string {
  const parts: Uint8Array[] = writes.map((w) => stream.write(Buffer.from(w, 'utf8')));
  parts.push(stream.end());
  return Buffer.concat(parts).toString('utf8');
}
