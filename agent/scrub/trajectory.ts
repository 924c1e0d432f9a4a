/**
 * Trajectory (JSON Lines) scrubber: two layers over each complete line.
 *
 * 1. Record layer (lines that parse as JSON): every string, keys included, is scrubbed whole,
 *    except a streamed delta field (see trajectory-presets.ts): the text of consecutive deltas
 *    with the same join key is one stream, so a value split across records is caught. Each piece
 *    of that stream's output goes back to the record its input came from; a marker goes to the
 *    record its match starts in. A record whose bytes the stream still holds waits (and every
 *    line after it, so order is kept) until they are resolved by a later delta, the run's end
 *    record, an idle flush or the end of input.
 * 2. Byte layer: the rendered line is scrubbed as bytes (JSON-escaped pieces catch values in
 *    escaped form and values spanning fields). If that would leave invalid JSON (a match cutting
 *    through JSON syntax), the record-layer line is kept: every string in it is already scrubbed.
 * Lines that are not JSON get the byte layer alone. Only strings that change are rewritten; all
 * other bytes of a line stay as they were.
 */
import { allHold, isPath, valueAt } from './json-path.js';
import { stringTokens } from './json-strings.js';
import type { MaskListener, Scrubber } from './scrubber.js';
import { type TextPiece, TextScrubStream } from './text-stream.js';
import { TRAJECTORY_PRESETS, type TrajectoryPreset } from './trajectory-presets.js';

export interface TrajectoryOptions {
  readonly presets?: readonly TrajectoryPreset[];
  /** Lines queued behind a waiting record before everything is flushed; default 1000. */
  readonly maxQueuedLines?: number;
  /** Hears of every marker written into the output, with its pattern's id. */
  readonly onMask?: MaskListener;
}

interface Entry {
  /** The line with the delta field cut out (`before` + delta + `after`), or the whole line. */
  before: string;
  delta: string | undefined;
  after: string;
  eol: string;
  /** Raw bytes for a line that is not JSON; scrubbed as bytes only. */
  raw: Buffer | undefined;
  waiting: boolean;
}

interface Run {
  readonly text: TextScrubStream;
  /** Records with bytes the stream still holds, oldest first, with their input offsets. */
  waiting: { entry: Entry; start: number }[];
}

const NEWLINE = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class TrajectoryScrubber {
  private readonly presets: readonly TrajectoryPreset[];
  private readonly maxQueued: number;
  private readonly onMask: MaskListener | undefined;
  private readonly runs = new Map<string, Run>();
  private queue: Entry[] = [];
  private partialLine: Buffer[] = [];

  constructor(
    private readonly scrubber: Scrubber,
    opts: TrajectoryOptions = {},
  ) {
    this.presets = opts.presets ?? TRAJECTORY_PRESETS;
    this.maxQueued = opts.maxQueuedLines ?? 1000;
    this.onMask = opts.onMask;
  }

  /** Records waiting for the next delta of their run; an idle flush releases them. */
  get held(): number {
    return this.queue.length;
  }

  write(chunk: Uint8Array): Buffer {
    let from = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, from)) {
      this.partialLine.push(Buffer.from(chunk.subarray(from, nl)));
      this.line(Buffer.concat(this.partialLine), '\n');
      this.partialLine = [];
      from = nl + 1;
    }
    if (from < chunk.length) this.partialLine.push(Buffer.from(chunk.subarray(from)));
    if (this.queue.length > this.maxQueued) return Buffer.concat([this.drain(), this.flush()]);
    return this.drain();
  }

  /** Idle flush: every waiting record gets what its run still holds. */
  flush(): Buffer {
    for (const run of this.runs.values()) this.close(run, run.text.flush());
    return this.drain();
  }

  end(): Buffer {
    if (this.partialLine.length > 0) this.line(Buffer.concat(this.partialLine), '');
    this.partialLine = [];
    for (const [key, run] of this.runs) {
      this.close(run, run.text.end());
      this.runs.delete(key);
    }
    return this.drain();
  }

  private line(bytes: Buffer, eol: string): void {
    const text = jsonText(bytes);
    const root = text === undefined ? undefined : parse(text);
    if (text === undefined || root === undefined) {
      this.queue.push({ before: '', delta: undefined, after: '', eol, raw: bytes, waiting: false });
      return;
    }
    this.endRuns(root);

    const delta = this.findDelta(root);
    const parts: string[] = [];
    let slot = -1;
    let deltaText = '';
    let last = 0;
    for (const tok of stringTokens(text)) {
      parts.push(text.slice(last, tok.start));
      last = tok.end;
      if (delta !== undefined && slot < 0 && !tok.isKey && isPath(tok.path, delta.path)) {
        slot = parts.length;
        deltaText = tok.value;
        parts.push('');
        continue;
      }
      const clean = this.scrubber.scrubText(tok.value, this.onMask);
      parts.push(clean === tok.value ? text.slice(tok.start, tok.end) : JSON.stringify(clean));
    }
    parts.push(text.slice(last));

    const whole = slot < 0 || delta === undefined;
    const entry: Entry = {
      before: whole ? parts.join('') : parts.slice(0, slot).join(''),
      delta: undefined,
      after: whole ? '' : parts.slice(slot + 1).join(''),
      eol,
      raw: undefined,
      waiting: false,
    };
    if (!whole) this.feed(delta.key, deltaText, entry);
    this.queue.push(entry);
  }

  /** Writes a delta into its run and hands each output piece to the record it came from. */
  private feed(key: string, text: string, entry: Entry): void {
    let run = this.runs.get(key);
    if (run === undefined) {
      run = { text: new TextScrubStream(this.scrubber.createStream(this.onMask)), waiting: [] };
      this.runs.set(key, run);
    }
    entry.delta = '';
    entry.waiting = true;
    run.waiting.push({ entry, start: run.text.written });
    this.place(run, run.text.write(text));
  }

  private place(run: Run, pieces: readonly TextPiece[]): void {
    const waiting = run.waiting;
    for (const piece of pieces) {
      let k = waiting.length - 1;
      while (k > 0 && waiting[k]!.start > piece.at) k--;
      // Plain bytes that run past the next record's start are cut there.
      let bytes = Buffer.from(piece.text, 'utf8');
      let at = piece.at;
      for (; piece.plain && k + 1 < waiting.length; k++) {
        const cut = Math.max(0, Math.min(bytes.length, waiting[k + 1]!.start - at));
        append(waiting[k]!.entry, bytes.toString('utf8', 0, cut));
        bytes = bytes.subarray(cut);
        at += cut;
      }
      append(waiting[k]!.entry, bytes.toString('utf8'));
    }
    const emitted = run.text.emitted;
    const held = run.text.held;
    while (waiting.length > 0) {
      const next = waiting[1];
      const done = next === undefined ? held === 0 : next.start <= emitted;
      if (!done) break;
      waiting.shift()!.entry.waiting = false;
    }
  }

  private close(run: Run, rest: readonly TextPiece[]): void {
    if (run.waiting.length === 0) return;

    this.place(run, rest);
    for (const { entry } of run.waiting) entry.waiting = false;
    run.waiting = [];
  }

  private endRuns(root: unknown): void {
    for (const preset of this.presets) {
      for (const rule of preset.ends) {
        if (!allHold(root, rule.when)) continue;

        const prefix = `${preset.name}\u0000`;
        const one = runKey(preset, root);
        for (const [key, run] of this.runs) {
          if (rule.all === true ? !key.startsWith(prefix) : key !== one) continue;

          this.close(run, run.text.end());
          this.runs.delete(key);
        }
      }
    }
  }

  private findDelta(root: unknown): { key: string; path: string } | undefined {
    for (const preset of this.presets) {
      for (const rule of preset.deltas) {
        if (allHold(root, rule.when) && typeof valueAt(root, rule.text) === 'string') {
          return { key: runKey(preset, root), path: rule.text };
        }
      }
    }
    return undefined;
  }

  private drain(): Buffer {
    let n = 0;
    while (n < this.queue.length && !this.queue[n]!.waiting) n++;
    const out = this.queue.slice(0, n).map((e) => this.render(e));
    this.queue = this.queue.slice(n);
    return Buffer.concat(out);
  }

  // 2. Byte layer
  private render(e: Entry): Buffer {
    if (e.raw !== undefined) {
      return Buffer.concat([this.scrubber.scrub(e.raw, this.onMask), Buffer.from(e.eol)]);
    }

    const line = e.before + (e.delta === undefined ? '' : JSON.stringify(e.delta)) + e.after;
    const bytes = Buffer.from(line, 'utf8');
    const masked: number[] = [];
    const scrubbed = this.scrubber.scrub(bytes, (p) => masked.push(p));
    const keep = scrubbed.equals(bytes) || parse(scrubbed.toString('utf8')) === undefined;
    // Only markers that reach the output count.
    if (!keep) for (const p of masked) this.onMask?.(p);
    return Buffer.concat([keep ? bytes : scrubbed, Buffer.from(e.eol)]);
  }
}

function append(entry: Entry, text: string): void {
  entry.delta = (entry.delta ?? '') + text;
}

function runKey(preset: TrajectoryPreset, root: unknown): string {
  return `${preset.name}\u0000${JSON.stringify(preset.key.map((p) => valueAt(root, p) ?? null))}`;
}

function jsonText(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined; // not UTF-8: the byte layer alone handles it
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // not JSON: the byte layer alone handles it
  }
}
