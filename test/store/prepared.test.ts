import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertCollection } from '../../server/store/collections.js';
import type { Db } from '../../server/store/db.js';
import { openStore } from '../../server/store/open.js';
import { prepared } from '../../server/store/prepared.js';

// Prepared queries are compiled once and then bound with each call's values; the contract
// tests run the prepared attach queries on both stores. Here: the values really are bound per
// call, and a query that would not bind a parameter is refused when compiled.

let db: Db;

beforeAll(async () => {
  ({ db } = await openStore(
    { dataDir: mkdtempSync(join(tmpdir(), 'rk-prepared-')) },
    pino({ level: 'silent' }),
  ));
  for (const name of ['alpha', 'beta', 'gamma']) {
    await insertCollection(db, {
      name,
      description: `the ${name} collection`,
      data_key_sealed: 'sealed',
      created_at: 1,
      updated_at: 1,
      created_by: 'tok_test',
    });
  }
});
afterAll(() => db?.destroy());

describe('prepared queries', () => {
  it('answers each call with its own values, as the builder would', async () => {
    const byName = prepared((d, p: { name: string; after: number }) =>
      d
        .selectFrom('collections')
        .select(['name', 'description'])
        .where('name', '=', p.name)
        .where('created_at', '<', p.after),
    );
    for (const name of ['beta', 'alpha', 'gamma', 'delta', 'beta']) {
      const built = await db
        .selectFrom('collections')
        .select(['name', 'description'])
        .where('name', '=', name)
        .where('created_at', '<', 2)
        .execute();
      expect((await byName(db, { name, after: 2 })).rows).toEqual(built);
    }
    expect((await byName(db, { name: 'beta', after: 1 })).rows).toEqual([]);
  });

  it('runs inside a transaction, and a rollback undoes it', async () => {
    const describe_ = prepared((d, p: { name: string; text: string }) =>
      d.updateTable('collections').set({ description: p.text }).where('name', '=', p.name),
    );
    await db
      .transaction()
      .execute(async (trx) => {
        const res = await describe_(trx, { name: 'gamma', text: 'changed' });
        expect(res.numAffectedRows).toBe(1n);
        throw new Error('roll back');
      })
      .catch(() => {});
    const row = await db
      .selectFrom('collections')
      .select('description')
      .where('name', '=', 'gamma')
      .executeTakeFirst();
    expect(row?.description).toBe('the gamma collection');
  });

  it('refuses a parameter that would reach the SQL text', async () => {
    const inlined = prepared((d, p: { column: string }) =>
      d.selectFrom('collections').select(sql.raw<string>(p.column).as('x')),
    );
    await expect(inlined(db, { column: 'name' })).rejects.toThrow(
      'a prepared query put a parameter in its SQL',
    );
  });

  it('refuses a parameter that is read but not bound', async () => {
    const branching = prepared((d, p: { only: boolean; name: string }) => {
      const q = d.selectFrom('collections').select('name');
      return p.only ? q.where('name', '=', p.name) : q;
    });
    await expect(branching(db, { only: false, name: 'alpha' })).rejects.toThrow(
      'prepared query parameter only is not a bound value',
    );
  });
});
