import { sql } from 'kysely';
import type { Db } from './db.js';
import { isPostgres } from './postgres.js';

interface Job {
  work: (trx: Db) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit on SQLite: units of work that arrive in the same turn of the event loop share
 * one transaction, so they share its COMMIT, which was the largest single cost of an attach
 * (bench/attach.ts). Each unit runs in a savepoint of its own: one that throws is rolled back
 * alone and rejects with its error, the others go on. Every unit learns its outcome only once
 * the shared transaction committed; if the commit fails, every unit rejects with that error
 * and nothing of any of them is kept. On PostgreSQL a unit is a transaction of its own, as
 * before: concurrent writers there do not queue behind one connection, and a failed statement
 * would end the shared transaction for all.
 */
export class GroupCommit {
  private queue: Job[] = [];

  constructor(private readonly db: Db) {}

  /** Runs `work` in a transaction (shared with others on SQLite); resolves after its commit. */
  run<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    if (isPostgres(this.db)) return this.db.transaction().execute(work);
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(() => void this.flush());
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private async flush(): Promise<void> {
    const jobs = this.queue;
    this.queue = [];
    const outcomes: (() => void)[] = [];
    try {
      await this.db.transaction().execute(async (trx) => {
        for (const job of jobs) {
          await sql`savepoint unit`.execute(trx);
          try {
            const value = await job.work(trx);
            await sql`release unit`.execute(trx);
            outcomes.push(() => job.resolve(value));
          } catch (err) {
            await sql`rollback to unit`.execute(trx);
            await sql`release unit`.execute(trx);
            outcomes.push(() => job.reject(err));
          }
        }
      });
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    for (const settle of outcomes) settle();
  }
}
