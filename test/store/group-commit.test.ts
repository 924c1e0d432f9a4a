import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../server/store/db.js';
import { GroupCommit } from '../../server/store/group-commit.js';
import { getMeta, putMeta } from '../../server/store/meta.js';
import { openStore } from '../../server/store/open.js';

// Units that arrive together share one SQLite transaction, each in its own savepoint: a unit
// that fails is undone alone, and no unit hears of success before the commit.

let db: Db;

beforeAll(async () => {
  db = (
    await openStore(
      { dataDir: mkdtempSync(join(tmpdir(), 'rk-group-')) },
      pino({ level: 'silent' }),
    )
  ).db;
});
afterAll(() => db.destroy());

describe('GroupCommit on SQLite', () => {
  it('undoes a failing unit alone; the others commit together', async () => {
    const group = new GroupCommit(db);
    const boom = new Error('unit failed after writing');
    const results = await Promise.allSettled([
      group.run(async (trx) => {
        await putMeta(trx, 'first', '1');
        return 'first';
      }),
      group.run(async (trx) => {
        await putMeta(trx, 'failed', 'x');
        throw boom;
      }),
      group.run(async (trx) => {
        await putMeta(trx, 'third', '3');
        return 'third';
      }),
    ]);
    expect(results).toEqual([
      { status: 'fulfilled', value: 'first' },
      { status: 'rejected', reason: boom },
      { status: 'fulfilled', value: 'third' },
    ]);
    expect(await getMeta(db, 'first')).toBe('1');
    expect(await getMeta(db, 'failed')).toBeUndefined();
    expect(await getMeta(db, 'third')).toBe('3');
  });

  it('runs the units of one turn in one transaction, and later ones in the next', async () => {
    let transactions = 0;
    const counting = new Proxy(db, {
      get(target, key) {
        if (key === 'transaction') transactions++;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const group = new GroupCommit(counting);
    let seenInside: string | undefined;
    await Promise.all([
      group.run((trx) => putMeta(trx, 'shared-a', 'a')),
      group.run(async (trx) => {
        seenInside = await getMeta(trx, 'shared-a');
      }),
      group.run((trx) => putMeta(trx, 'shared-c', 'c')),
    ]);
    expect(transactions).toBe(1);
    expect(seenInside).toBe('a');
    await group.run((trx) => putMeta(trx, 'shared-d', 'd'));
    expect(transactions).toBe(2);
    expect(await getMeta(db, 'shared-c')).toBe('c');
  });
});
