/**
 * Matches merged into groups: overlapping or nested matches become one group, adjacent ones
 * stay apart. Each group remembers its winner, the match that names its marker: the one that
 * starts first, then the longest, then the one whose label sorts first. The winner is a
 * function of the set of matches, so the order they arrive in never matters.
 */

export interface Group {
  start: number;
  end: number;
  winStart: number;
  winLength: number;
  winPattern: number;
}

/** Negative when pattern a's label sorts before b's. */
export type LabelOrder = (a: number, b: number) => number;

export class Groups {
  /** Disjoint, sorted by start; a group never touches the next one's bytes. */
  readonly items: Group[] = [];

  constructor(private readonly order: LabelOrder) {}

  get first(): Group | undefined {
    return this.items[0];
  }

  /** Adds matches covering [start, end); the one starting at `start` is `length` long. */
  add(start: number, end: number, pattern: number, length = end - start): void {
    const items = this.items;
    const last = items[items.length - 1];
    if (last === undefined || start >= last.end) {
      items.push({ start, end, winStart: start, winLength: length, winPattern: pattern });
      return;
    }

    if (start >= last.start) {
      if (end > last.end) last.end = end;
      this.offer(last, start, length, pattern);
      return;
    }

    this.insert(start, end, pattern, length);
  }

  shift(): void {
    this.items.shift();
  }

  /** The slow path: the match lands before the last group. */
  private insert(start: number, end: number, pattern: number, length: number): void {
    const items = this.items;
    let i = 0;
    while (i < items.length && items[i]!.end <= start) i++;
    let j = i;
    while (j < items.length && items[j]!.start < end) j++;
    const merged: Group = { start, end, winStart: start, winLength: length, winPattern: pattern };
    for (let k = i; k < j; k++) {
      const g = items[k]!;
      merged.start = Math.min(merged.start, g.start);
      merged.end = Math.max(merged.end, g.end);
      this.offer(merged, g.winStart, g.winLength, g.winPattern);
    }
    items.splice(i, j - i, merged);
  }

  private offer(g: Group, start: number, length: number, pattern: number): void {
    if (start > g.winStart) return;

    const better =
      start < g.winStart ||
      length > g.winLength ||
      (length === g.winLength && this.order(pattern, g.winPattern) < 0);
    if (!better) return;

    g.winStart = start;
    g.winLength = length;
    g.winPattern = pattern;
  }
}
