/**
 * What bounds the scrubber's ratio to the `indexOf` floor: `npx tsx bench/scrub-ceiling.ts`.
 *
 * One process, the input of bench/scrub.ts (64 MiB, 100 secrets of 20 to 100 characters, 64 KiB
 * writes), every case timed in each of 9 interleaved rounds; the median of each is reported,
 * as MB/s and as a fraction of `indexOf` in the same run. The cases:
 * - `indexOf`: one secret over the whole buffer (bench/scrub.ts's floor);
 * - `fresh-output`: each write only allocated anew and copied, nothing scanned: what any
 *   scrubber that returns each write's output as a new buffer pays at least;
 * - `js-sample`: the same sampling in JavaScript, over each write in place (no copy, no output);
 * - `js-sample+fresh-output`: the two together;
 * - `wasm-sample`: each write copied into WebAssembly memory and sampled there (one 32-bit load
 *   per 16 bytes, one multiply, one bit test in a filter of the pieces' 4-byte grams), no
 *   verification and no output: the scrubber's first step without JavaScript's costs;
 * - `wasm-sample+fresh-output`: the two together;
 * - `scrubber`: the engine itself.
 * The last line is one JSON object.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { piecesFor } from '../agent/scrub/pieces.js';
import { DEFAULT_POLICY } from '../agent/scrub/policy.js';
import { Scrubber } from '../agent/scrub/scrubber.js';
import { median } from './lib.js';
import { inputOf, secretsOf } from './scrub-input.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const ROUNDS = 9;
/** Sampling stride of the scrubber's matcher on this input (docs/scrubber.md). */
const STRIDE = 16;
const FILTER_BITS = 20;
const FILTER_AT = 1 * MiB;

interface Sample {
  memory: { buffer: ArrayBuffer };
  sample(len: number, stride: number, shift: number): number;
}

/** The part of the WebAssembly global used here (this project's type libraries omit it). */
const { WebAssembly: wasmApi } = globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array): Promise<{ instance: { exports: unknown } }> };
};

async function loadSample(): Promise<Sample> {
  const wabt = await wabtInit();
  const file = join(import.meta.dirname, 'sample-filter.wat');
  const module = wabt.parseWat(file, readFileSync(file, 'utf8'));
  const { buffer } = module.toBinary({});
  module.destroy();
  const { instance } = await wasmApi.instantiate(buffer);
  return instance.exports as unknown as Sample;
}

const secrets = secretsOf(100, 20, 100, 1);
const input = inputOf(64 * MiB, secrets, 2);
const wasm = await loadSample();
const linear = new Uint8Array(wasm.memory.buffer);

// The filter holds every 4-byte gram at offsets 0 to STRIDE - 1 of every piece, as the
// matcher's first filter does.
const filter = new Int32Array(wasm.memory.buffer, FILTER_AT, (1 << FILTER_BITS) / 32);
const shift = 32 - FILTER_BITS;
let grams = 0;
for (const value of secrets) {
  for (const piece of piecesFor(value, DEFAULT_POLICY)) {
    for (const segment of piece.spec.segments) {
      const bytes = Buffer.from(segment);
      for (let o = 0; o < STRIDE && o + 4 <= bytes.length; o++) {
        const h = Math.imul(bytes.readInt32LE(o), 0x9e3779b1 | 0) >>> shift;
        filter[h >>> 5]! |= 1 << (h & 31);
        grams++;
      }
    }
  }
}

const scrubber = new Scrubber();
for (const [i, v] of secrets.entries()) scrubber.register(`SECRET_${i}`, v);
const needle = Buffer.from(secrets[0]!);

const words = new Int32Array(input.buffer, input.byteOffset, input.length >> 2);
const jsFilter = Int32Array.from(filter);
const noted = new Int32Array(CHUNK / STRIDE);

/** The sampling of `wasm-sample` in JavaScript, over the write [at, at + len) of the input. */
function jsSample(at: number, len: number): number {
  let n = 0;
  const step = STRIDE >> 2;
  for (let w = at >> 2, end = (at + len) >> 2; w < end; w += step) {
    const h = Math.imul(words[w]!, 0x9e3779b1 | 0) >>> shift;
    if ((jsFilter[h >>> 5]! & (1 << (h & 31))) !== 0) noted[n++] = w;
  }
  return n;
}

/** Each case returns a number that depends on all its work, so none of it can be skipped. */
const CASES: Record<string, () => number> = {
  indexOf: () => {
    let hits = 0;
    for (let at = input.indexOf(needle); at >= 0; at = input.indexOf(needle, at + 1)) hits++;
    return hits;
  },
  'fresh-output': () => {
    let sum = 0;
    for (let at = 0; at < input.length; at += CHUNK) {
      const out = Buffer.allocUnsafe(Math.min(CHUNK, input.length - at));
      input.copy(out, 0, at, at + out.length);
      sum += out[out.length - 1]!;
    }
    return sum;
  },
  'js-sample': () => {
    let hits = 0;
    for (let at = 0; at < input.length; at += CHUNK) hits += jsSample(at, CHUNK);
    return hits;
  },
  'js-sample+fresh-output': () => {
    let sum = 0;
    for (let at = 0; at < input.length; at += CHUNK) {
      sum += jsSample(at, CHUNK);
      const out = Buffer.allocUnsafe(Math.min(CHUNK, input.length - at));
      input.copy(out, 0, at, at + out.length);
      sum += out[out.length - 1]!;
    }
    return sum;
  },
  'wasm-sample': () => {
    let hits = 0;
    for (let at = 0; at < input.length; at += CHUNK) {
      const write = input.subarray(at, at + CHUNK);
      linear.set(write, 0);
      hits += wasm.sample(write.length, STRIDE, shift);
    }
    return hits;
  },
  'wasm-sample+fresh-output': () => {
    let sum = 0;
    for (let at = 0; at < input.length; at += CHUNK) {
      const write = input.subarray(at, at + CHUNK);
      linear.set(write, 0);
      sum += wasm.sample(write.length, STRIDE, shift);
      const out = Buffer.allocUnsafe(write.length);
      out.set(linear.subarray(0, write.length));
      sum += out[out.length - 1]!;
    }
    return sum;
  },
  scrubber: () => {
    const stream = scrubber.createStream();
    let n = 0;
    for (let at = 0; at < input.length; at += CHUNK) {
      n += stream.write(input.subarray(at, at + CHUNK)).length;
    }
    return n + stream.end().length;
  },
};

const seconds: Record<string, number[]> = Object.fromEntries(
  Object.keys(CASES).map((name) => [name, []]),
);
let check = 0;
for (const run of Object.values(CASES)) check += run(); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(CASES)) {
    const start = process.hrtime.bigint();
    check += run();
    seconds[name]!.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
}

const mbps = (name: string) => Math.round(input.length / 1e6 / median(seconds[name]!));
const floor = mbps('indexOf');
const figures: Record<string, { mbps: number; ofFloor: number }> = {};
for (const name of Object.keys(CASES)) {
  const m = mbps(name);
  const ofFloor = Number((m / floor).toFixed(2));
  figures[name] = { mbps: m, ofFloor };
  const rate = `${String(m).padStart(6)} MB/s`;
  process.stdout.write(`${name.padEnd(26)} ${rate}  ${ofFloor.toFixed(2)} of indexOf\n`);
}
const summary = { rounds: ROUNDS, chunkBytes: CHUNK, filterGrams: grams, cases: figures };
process.stdout.write(`${JSON.stringify({ ...summary, check: check > 0 })}\n`);
