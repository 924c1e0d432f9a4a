import type { Logger } from '../logger.js';
import { collectionVersions } from '../store/collections.js';
import type { Db } from '../store/db.js';
import { endedRuns } from '../store/runs.js';
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
 * the source of truth: the watcher reads the versions of the watched collections on a short
 * interval and which watched runs have ended on every `runEvery`-th tick, and both soon after a
 * hint (poke), so a change made by any process on the same store is seen. Run states are read
 * less often because there is one per stream: with 10,000 streams, reading them every 200 ms
 * cost a quarter of a core on an idle control plane. Ending a run through this process, or
 * through a replica on PostgreSQL, hints; an expired run's own stream ends itself on time.
 */
export class ChangeWatcher {
  private readonly collections = new Map<string, Watched>();
  private readonly runs = new Map<string, Set<RunListener>>();
  private readonly timer: NodeJS.Timeout;
  private checking: Promise<void> | undefined;
  private again = false;
  /** Whether the next check reads run states too. */
  private withRuns = true;
  private ticks = 0;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    intervalMs = 200,
    runEvery = 5,
  ) {
    this.timer = setInterval(() => {
      this.ticks += 1;
      this.request(this.ticks % runEvery === 0);
    }, intervalMs);
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

  /**
   * Asks for a full check now (versions and run states); checks never overlap, and one asked for
   * during a check follows it.
   */
  poke(): void {
    this.request(true);
  }

  private request(withRuns: boolean): void {
    if (this.closed) return;
    this.withRuns ||= withRuns;
    if (this.checking !== undefined) {
      this.again = true;
      return;
    }
    const runs = this.withRuns;
    this.withRuns = false;
    this.checking = this.check(runs)
      .catch((err: unknown) => {
        this.withRuns ||= runs;
        this.log.warn({ err }, 'change check failed; retrying');
      })
      .finally(() => {
        this.checking = undefined;
        if (this.again) {
          this.again = false;
          this.request(false);
        }
      });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async check(withRuns: boolean): Promise<void> {
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
    if (!withRuns || this.runs.size === 0) return;
    for (const { id, state } of await endedRuns(this.db, [...this.runs.keys()])) {
      for (const l of [...(this.runs.get(id) ?? [])]) l(state);
    }
  }
}
