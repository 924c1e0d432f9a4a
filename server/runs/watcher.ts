import type { Logger } from '../logger.js';
import { collectionVersions } from '../store/collections.js';
import type { Db } from '../store/db.js';
import { runStates } from '../store/runs.js';
import type { CollectionRow, RunState } from '../store/schema.js';

/** Told the collection's row as read, so it need not be read again per stream. */
type Listener = (collection: CollectionRow) => void;
type RunListener = (state: RunState) => void;

/**
 * Each listener with the version it was last told of. Streams of one collection hold different
 * versions: one may start watching with an older bundle than another stream has already seen.
 */
type Watched = Map<Listener, number>;

/**
 * Tells attached streams when their collection's version moves or their run ends. The store is
 * the source of truth: the watcher reads versions and run states for what is watched, on a short
 * interval and soon after a hint, so a change made by any process on the same store is seen.
 */
export class ChangeWatcher {
  private readonly collections = new Map<string, Watched>();
  private readonly runs = new Map<string, Set<RunListener>>();
  private readonly timer: NodeJS.Timeout;
  private checking: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    intervalMs = 200,
  ) {
    this.timer = setInterval(() => this.poke(), intervalMs);
    this.timer.unref();
  }

  watchCollection(name: string, version: number, listener: Listener): () => void {
    let w = this.collections.get(name);
    if (w === undefined) {
      w = new Map();
      this.collections.set(name, w);
    }
    w.set(listener, version);
    const watched = w;
    return () => {
      watched.delete(listener);
      if (watched.size === 0 && this.collections.get(name) === watched) {
        this.collections.delete(name);
      }
    };
  }

  watchRun(id: string, listener: RunListener): () => void {
    let set = this.runs.get(id);
    if (set === undefined) {
      set = new Set();
      this.runs.set(id, set);
    }
    set.add(listener);
    const s = set;
    return () => {
      s.delete(listener);
      if (s.size === 0) this.runs.delete(id);
    };
  }

  /** Asks for a check now; checks never overlap, and one asked for during a check follows it. */
  poke(): void {
    if (this.closed) return;
    if (this.checking !== undefined) {
      this.again = true;
      return;
    }
    this.checking = this.check()
      .catch((err: unknown) => this.log.warn({ err }, 'change check failed; retrying'))
      .finally(() => {
        this.checking = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.collections.size === 0 && this.runs.size === 0) return;
    const versions = await collectionVersions(this.db, [...this.collections.keys()]);
    for (const row of versions) {
      const w = this.collections.get(row.name);
      if (w === undefined) continue;
      const current = Number(row.version);
      for (const [l, seen] of [...w]) {
        // A listener that an earlier one removed in this loop is not told.
        if (current <= seen || !w.has(l)) continue;
        w.set(l, current);
        l(row);
      }
    }
    const states = await runStates(this.db, [...this.runs.keys()]);
    for (const { id, state } of states) {
      if (state !== 'ended' && state !== 'expired') continue;
      for (const l of [...(this.runs.get(id) ?? [])]) l(state);
    }
  }
}
