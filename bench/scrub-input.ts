/**
 * The scrubber benchmarks' input: deterministic secrets, and mixed log lines and JSONL with a
 * piece of some secret planted about every 4 KiB.
 */
import { piecesFor } from '../agent/scrub/pieces.js';
import { DEFAULT_POLICY } from '../agent/scrub/policy.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SPECIAL = '-_.+/=:@%"\\';

export function secretsOf(count: number, minLen: number, maxLen: number, seed: number): string[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => {
    const len = minLen + Math.floor(r() * (maxLen - minLen + 1));
    let s = '';
    for (let i = 0; i < len; i++) {
      const pool = r() < 0.08 ? SPECIAL : ALNUM;
      s += pool[Math.floor(r() * pool.length)];
    }
    return s;
  });
}

const WORDS = (
  'request handled user session cache miss retry connection opened closed worker job queued ' +
  'started finished error warning upstream timeout status ok payload bytes latency region build'
).split(' ');

/** Mixed log lines and JSONL, with a planted piece of some secret about every 4 KiB. */
export function inputOf(size: number, secrets: readonly string[], seed: number): Buffer {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const planted = secrets.flatMap((v) =>
    piecesFor(v, DEFAULT_POLICY)
      .filter((p) => p.spec.segments.length === 1)
      .map((p) => Buffer.from(p.spec.segments[0]!).toString('latin1')),
  );
  const out = Buffer.alloc(size);
  let at = 0;
  let nextPlant = 4096;
  let t = 1_700_000_000_000;
  while (at < size) {
    t += Math.floor(r() * 1000);
    const words = Array.from({ length: 4 + Math.floor(r() * 12) }, () => pick(WORDS)).join(' ');
    const id = Math.floor(r() * 0xffffffff)
      .toString(16)
      .padStart(8, '0');
    const level = pick(['info', 'warn', 'debug']);
    let line =
      r() < 0.5
        ? `${new Date(t).toISOString()} ${level.toUpperCase()} [${id}] ${words}\n`
        : `${JSON.stringify({ ts: t, level, id, msg: words, n: t % 997 })}\n`;
    if (at >= nextPlant && planted.length > 0) {
      line = `${line.slice(0, -1)} token=${pick(planted)}\n`;
      nextPlant = at + 4096;
    }
    at += out.write(line, at, 'latin1');
  }
  return out;
}
