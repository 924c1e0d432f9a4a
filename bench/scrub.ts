/**
 * Scrubber throughput and memory: `npx tsx bench/scrub.ts`.
 *
 * Each case runs in its own child process (so peak RSS belongs to that case alone), warms up on
 * 4 MiB, then reports the best of 3 timed passes (1 for the slow baselines), over deterministic
 * input: 64 MiB of mixed log lines and JSONL with occurrences of the secrets'
 * pieces planted about every 4 KiB. The parent prints one line per case, then one JSON object.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import AhoCorasick from 'modern-ahocorasick';
import { piecesFor } from '../agent/scrub/pieces.js';
import { DEFAULT_POLICY } from '../agent/scrub/policy.js';
import { Scrubber } from '../agent/scrub/scrubber.js';
import { inputOf, secretsOf } from './scrub-input.js';

const MiB = 1024 * 1024;

type CaseName =
  | 'scrubber'
  | 'indexOf'
  | 'naive'
  | 'ahocorasick'
  | 'scrubber-256B-chunks'
  | 'scrubber-8-char-secrets'
  | 'pathological';

const CASES: readonly CaseName[] = [
  'scrubber',
  'indexOf',
  'naive',
  'ahocorasick',
  'scrubber-256B-chunks',
  'scrubber-8-char-secrets',
  'pathological',
];

/** Cases too slow to time more than once. */
const SLOW: readonly CaseName[] = ['naive', 'ahocorasick'];

interface Result {
  case: CaseName;
  mbps: number;
  inputMiB: number;
  seconds: number;
  /** Peak RSS of the child process, and how far it rose above the RSS before the timed run. */
  peakRssMiB: number;
  rssRiseMiB: number;
  nsPerLoop: number;
  note?: string;
}

function scrubberRun(
  input: Buffer,
  secrets: readonly string[],
  chunk: number,
): (length?: number) => number {
  const scrubber = new Scrubber();
  for (const [i, v] of secrets.entries()) scrubber.register(`SECRET_${i}`, v);
  return (length = input.length) => {
    const stream = scrubber.createStream();
    let n = 0;
    for (let at = 0; at < length; at += chunk) {
      n += stream.write(input.subarray(at, Math.min(length, at + chunk))).length;
    }
    return n + stream.end().length;
  };
}

interface Setup {
  input: Buffer;
  /** Scans the first `length` bytes (all by default). */
  run: (length?: number) => number;
  note?: string;
}

function setup(name: CaseName): Setup {
  if (name === 'pathological') {
    const input = Buffer.alloc(4 * MiB, 'a');
    return { input, run: scrubberRun(input, ['a'.repeat(16)], 64 * 1024) };
  }
  if (name === 'scrubber-8-char-secrets') {
    const secrets = secretsOf(100, 8, 8, 7);
    const input = inputOf(64 * MiB, secrets, 8);
    return { input, run: scrubberRun(input, secrets, 64 * 1024) };
  }
  const secrets = secretsOf(100, 20, 100, 1);
  const input = inputOf(64 * MiB, secrets, 2);
  switch (name) {
    case 'scrubber':
      return { input, run: scrubberRun(input, secrets, 64 * 1024) };
    case 'scrubber-256B-chunks':
      return { input, run: scrubberRun(input, secrets, 256) };
    case 'indexOf': {
      const needle = Buffer.from(secrets[0]!);
      const run = (length = input.length) => {
        const view = input.subarray(0, length);
        let hits = 0;
        for (let at = view.indexOf(needle); at >= 0; at = view.indexOf(needle, at + 1)) hits++;
        return hits;
      };
      return { input, run, note: 'one secret, whole buffer' };
    }
    case 'naive': {
      const text = input.toString('latin1');
      const run = (length = text.length) =>
        secrets.reduce((s, v) => s.replaceAll(v, '[REDACTED]'), text.slice(0, length)).length;
      return { input, run, note: 'replaceAll of the 100 raw values only (not their pieces)' };
    }
    case 'ahocorasick': {
      const text = input.toString('latin1');
      const patterns = secrets.flatMap((v) =>
        piecesFor(v, DEFAULT_POLICY)
          .filter((p) => p.spec.segments.length === 1)
          .map((p) => Buffer.from(p.spec.segments[0]!).toString('latin1')),
      );
      const ac = new AhoCorasick([...new Set(patterns)]);
      const run = (length = text.length) => ac.count(text.slice(0, length));
      return { input, run, note: `modern-ahocorasick count(), ${patterns.length} pieces` };
    }
  }
}

/** Nanoseconds per iteration of a trivial loop: how fast (or busy) this machine is. */
function calibrate(): number {
  const start = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < 1e8; i++) x = (x + i * 7) | 0;
  const ns = Number(process.hrtime.bigint() - start) / 1e8;
  return x === 1 ? 0 : Number(ns.toFixed(2));
}

function child(name: CaseName): void {
  const { input, run, note } = setup(name);
  run(Math.min(input.length, 4 * MiB)); // warm the JIT on the first 4 MiB
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  // The best of a few passes: the machine may be shared; slow baselines get one pass.
  let seconds = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < (SLOW.includes(name) ? 1 : 3); pass++) {
    const start = process.hrtime.bigint();
    run();
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
  }
  const peak = process.resourceUsage().maxRSS * 1024;
  const result: Result = {
    case: name,
    mbps: Math.round(input.length / 1e6 / seconds),
    inputMiB: input.length / MiB,
    seconds: Number(seconds.toFixed(3)),
    peakRssMiB: Math.round(peak / MiB),
    rssRiseMiB: Math.round(Math.max(0, peak - rssBefore) / MiB),
    nsPerLoop: calibrate(),
    ...(note === undefined ? {} : { note }),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function parent(): void {
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const name of CASES) {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, name], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`bench case ${name} failed: ${r.stderr}`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
    results.push(result);
    const note = result.note === undefined ? '' : `  (${result.note})`;
    process.stdout.write(
      `${name.padEnd(26)} ${String(result.mbps).padStart(6)} MB/s  ${result.inputMiB} MiB  ` +
        `peak RSS ${result.peakRssMiB} MiB (+${result.rssRiseMiB} in run)  ` +
        `${result.nsPerLoop} ns/loop${note}\n`,
    );
  }
  const by = (c: CaseName) => results.find((r) => r.case === c)!.mbps;
  const summary = {
    scrubberMBps: by('scrubber'),
    indexOfFloorMBps: by('indexOf'),
    ofFloor: Number((by('scrubber') / by('indexOf')).toFixed(2)),
    naiveMBps: by('naive'),
    timesNaive: Math.round(by('scrubber') / by('naive')),
    ahoCorasickMBps: by('ahocorasick'),
    chunks256MBps: by('scrubber-256B-chunks'),
    secrets8MBps: by('scrubber-8-char-secrets'),
    pathologicalMBps: by('pathological'),
    peakRssMiB: Object.fromEntries(results.map((r) => [r.case, r.peakRssMiB])),
    nsPerLoop: Object.fromEntries(results.map((r) => [r.case, r.nsPerLoop])),
    targets: {
      atLeast1GBps: by('scrubber') >= 1000,
      atLeast06OfFloor: by('scrubber') >= 0.6 * by('indexOf'),
      atLeast50xNaive: by('scrubber') >= 50 * by('naive'),
      pathologicalAtLeast50MBps: by('pathological') >= 50,
    },
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

const arg = process.argv[2];
if (arg === undefined) parent();
else if ((CASES as readonly string[]).includes(arg)) child(arg as CaseName);
else
  throw new Error(`unknown bench case ${JSON.stringify(arg)}; expected one of ${CASES.join(', ')}`);
