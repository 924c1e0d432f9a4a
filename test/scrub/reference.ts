/**
 * A whole-input reference scrubber for tests: slow and plain on purpose. It shares no code with
 * the engine. Matches are found by simulating each pattern as a small NFA from every position;
 * overlapping matches are merged by sorting; the end-of-input rule masks the longest tail that
 * could still grow into a match when it is at least `maskFrom` bytes long.
 */

export interface RefPattern {
  readonly name: string;
  readonly segments: readonly Uint8Array[];
  readonly maxGap: number;
}

type State = string; // `s:k:j` inside segment k after j bytes; `g:k:c` after segment k, c spaces

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

function step(p: RefPattern, state: State, byte: number, out: Set<State>): boolean {
  const [kind, ks, ns] = state.split(':');
  const k = Number(ks);
  const n = Number(ns);
  let accepted = false;
  const enter = (seg: number, done: number) => {
    if (done < p.segments[seg]!.length) out.add(`s:${seg}:${done}`);
    else if (seg === p.segments.length - 1) accepted = true;
    else out.add(`g:${seg}:0`);
  };
  if (kind === 's') {
    if (p.segments[k]![n] === byte) enter(k, n + 1);
  } else {
    if (SPACE.has(byte) && n < p.maxGap) out.add(`g:${k}:${n + 1}`);
    if (p.segments[k + 1]![0] === byte) enter(k + 1, 1);
  }
  return accepted;
}

/** Ends of every match of `p` starting at `s`, and whether the NFA is still alive at the end. */
function runFrom(p: RefPattern, input: Uint8Array, s: number): { ends: number[]; alive: boolean } {
  let states = new Set<State>(['s:0:0']);
  const ends: number[] = [];
  for (let i = s; i < input.length && states.size > 0; i++) {
    const next = new Set<State>();
    let accepted = false;
    for (const st of states) accepted = step(p, st, input[i]!, next) || accepted;
    if (accepted) ends.push(i + 1);
    states = next;
  }
  return { ends, alive: states.size > 0 };
}

export interface RefOptions {
  readonly maskFrom: number;
  readonly marker: (name: string) => string;
}

interface Hit {
  start: number;
  end: number;
  name: string;
}

export function referenceScrub(
  input: Uint8Array,
  patterns: readonly RefPattern[],
  opts: RefOptions,
): Buffer {
  const hits: Hit[] = [];
  for (const p of patterns) {
    for (let s = 0; s < input.length; s++) {
      for (const end of runFrom(p, input, s).ends) hits.push({ start: s, end, name: p.name });
    }
  }
  for (let s = 0; s < input.length; s++) {
    const alive = patterns.filter((p) => runFrom(p, input, s).alive).map((p) => p.name);
    if (alive.length === 0) continue;

    if (input.length - s >= opts.maskFrom) {
      hits.push({ start: s, end: input.length, name: alive.sort()[0]! });
    }
    break;
  }

  const better = (a: Hit, b: Hit) =>
    a.start !== b.start
      ? a.start < b.start
      : a.end - a.start !== b.end - b.start
        ? a.end - a.start > b.end - b.start
        : a.name < b.name;
  hits.sort((a, b) => a.start - b.start);
  const groups: { start: number; end: number; win: Hit }[] = [];
  for (const h of hits) {
    const last = groups[groups.length - 1];
    if (last !== undefined && h.start < last.end) {
      last.end = Math.max(last.end, h.end);
      if (better(h, last.win)) last.win = h;
    } else {
      groups.push({ start: h.start, end: h.end, win: h });
    }
  }

  const parts: Buffer[] = [];
  let at = 0;
  for (const g of groups) {
    parts.push(Buffer.from(input.subarray(at, g.start)), Buffer.from(opts.marker(g.win.name)));
    at = g.end;
  }
  parts.push(Buffer.from(input.subarray(at)));
  return Buffer.concat(parts);
}
