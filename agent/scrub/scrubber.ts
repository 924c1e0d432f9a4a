/**
 * The scrubber: a registry of secret values and the streams that mask them. Every stream of
 * one scrubber sees a newly registered value from its next byte on, including bytes it is
 * still holding back; values stay registered for the scrubber's life.
 */
import { checkMarker, DEFAULT_MARKER, renderMarker } from './marker.js';
import { MatchStream, type PatternSource } from './match-stream.js';
import { Matcher } from './matcher.js';
import { PatternSet } from './patterns.js';
import {
  DEFAULT_POLICY,
  type PolicyOptions,
  planSecrets,
  type ScrubWarning,
  type SecretEntry,
} from './policy.js';

/** Told the pattern id of each marker a stream emits. */
export type MaskListener = (pattern: number) => void;

export interface ScrubberOptions {
  /** Shortest value (and piece) scrubbed, in bytes; default 8. */
  readonly minLength?: number;
  /** Marker template; `{name}` becomes the secret's name. Default `[REDACTED:{name}]`. */
  readonly marker?: string;
  /** Longest whitespace run between the lines of a multi-line value; default 32. */
  readonly maxGap?: number;
  /** Longest piece registered, in bytes; default 65536. */
  readonly maxPieceLength?: number;
}

/** A byte stream through the scrubber. */
export interface ScrubStream {
  /** Bytes safe to emit now; may be a view of `chunk`. */
  write(chunk: Uint8Array): Buffer;
  /** Idle flush: everything held is released now (masked when long enough). */
  flush(): Buffer;
  /** End of stream: everything held is released. */
  end(): Buffer;
  /** Bytes written but not yet emitted. */
  readonly held: number;
  /** Bytes written so far. */
  readonly written: number;
  /** Where the last call's output came from: (input offset, length, plain 1 / marker 0). */
  readonly lastLayout: readonly number[];
}

export class Scrubber implements PatternSource {
  readonly policy: PolicyOptions;
  private readonly template: string;
  private readonly patterns = new PatternSet();
  /** Per pattern id: the smallest name among the secrets that produce it, and its tag. */
  private readonly names: string[] = [];
  private readonly tags: string[] = [];
  private readonly markers = new Map<string, Buffer>();
  /** Per pattern id: its marker, once rendered. */
  private readonly markerOf: (Buffer | undefined)[] = [];
  private compiled: Matcher | undefined;
  private added = 0;

  constructor(opts: ScrubberOptions = {}) {
    this.policy = {
      minLength: positive('minLength', opts.minLength ?? DEFAULT_POLICY.minLength),
      maxGap: positive('maxGap', opts.maxGap ?? DEFAULT_POLICY.maxGap, 0),
      maxPieceLength: positive(
        'maxPieceLength',
        opts.maxPieceLength ?? DEFAULT_POLICY.maxPieceLength,
      ),
    };
    this.template = opts.marker ?? DEFAULT_MARKER;
    checkMarker(this.template);
  }

  get version(): number {
    return this.added;
  }

  /** Registers one value; a plain (non-sensitive) one is ignored. */
  register(name: string, value: string, opts: { sensitive?: boolean } = {}): ScrubWarning[] {
    return this.registerAll([{ name, value, sensitive: opts.sensitive ?? true }]);
  }

  registerAll(entries: readonly SecretEntry[]): ScrubWarning[] {
    const plan = planSecrets(entries, this.policy);
    for (const { name, tag, pieces } of plan.secrets) {
      for (const { spec } of pieces) {
        const { id, added } = this.patterns.add(spec);
        if (added) this.added++;
        const known = this.names[id];
        if (known === undefined || name < known) {
          this.names[id] = name;
          this.tags[id] = tag;
          this.markerOf[id] = undefined;
        } else if (name === known && this.tags[id] === '') {
          // The same value under the same name, now with a fingerprint to count it by.
          this.tags[id] = tag;
        }
      }
    }
    if (this.compiled !== undefined && this.compiled.table.count !== this.patterns.specs.length) {
      this.compiled = undefined;
    }
    return [...plan.warnings];
  }

  /** A stream; `onMask` hears of every marker it emits, with the pattern's id (see labelOf). */
  createStream(onMask?: MaskListener): ScrubStream {
    return new MatchStream(this, this.policy.minLength, onMask);
  }

  /** Scrubs a whole input at once (end of stream included). */
  scrub(input: Uint8Array, onMask?: MaskListener): Buffer {
    const stream = this.createStream(onMask);
    const head = stream.write(input);
    const tail = stream.end();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  }

  scrubText(text: string, onMask?: MaskListener): string {
    return this.scrub(Buffer.from(text, 'utf8'), onMask).toString('utf8');
  }

  /** The name a pattern's marker shows, and the tag registered with that name's value. */
  labelOf(pattern: number): { name: string; tag: string } {
    return { name: this.names[pattern] ?? '', tag: this.tags[pattern] ?? '' };
  }

  matcher(): Matcher {
    this.compiled ??= new Matcher(this.patterns.specs);
    return this.compiled;
  }

  readonly compareLabels = (a: number, b: number): number => {
    const x = this.names[a]!;
    const y = this.names[b]!;
    return x < y ? -1 : x > y ? 1 : 0;
  };

  marker(pattern: number): Uint8Array {
    const known = this.markerOf[pattern];
    if (known !== undefined) return known;

    const name = this.names[pattern]!;
    let bytes = this.markers.get(name);
    if (bytes === undefined) {
      bytes = renderMarker(this.template, name);
      this.markers.set(name, bytes);
    }
    this.markerOf[pattern] = bytes;
    return bytes;
  }
}

function positive(field: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`"${field}" must be an integer of at least ${min}; got ${value}`);
  }
  return value;
}
