import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeWatcher } from '../../server/runs/watcher.js';
import { bumpVersion, insertCollection } from '../../server/store/collections.js';
import { type Db, migrate, openSqlite } from '../../server/store/db.js';
import { waitFor } from '../helpers/wait.js';

// The watcher that tells attached streams their collection moved on, over a real store.

let db: Db;
let watcher: ChangeWatcher;

beforeAll(async () => {
  db = openSqlite(mkdtempSync(join(tmpdir(), 'runkeys-watcher-')));
  await migrate(db);
  await insertCollection(db, {
    name: 'acme',
    description: '',
    data_key_sealed: 'unused',
    created_at: 0,
    updated_at: 0,
    created_by: 'test',
  });
  watcher = new ChangeWatcher(db, pino({ level: 'silent' }), 20);
});

afterAll(async () => {
  watcher.close();
  await db.destroy();
});

describe('ChangeWatcher', () => {
  it('tells a stream when its collection version moves past the one it holds', async () => {
    let told = 0;
    const stop = watcher.watchCollection('acme', 0, () => told++);
    await bumpVersion(db, 'acme');
    await waitFor(() => told === 1, 2000, 'the listener to be told');
    stop();
  });

  // Regression: the version was shared by every stream of a collection, so a stream that
  // registered holding an older version than another stream had already seen was never told
  // of the change it missed (between assembling its bundle and starting to watch).
  it('tells a stream that registers behind a version another stream has seen', async () => {
    let first = 0;
    const stopFirst = watcher.watchCollection('acme', 1, () => first++);
    await bumpVersion(db, 'acme');
    await waitFor(() => first === 1, 2000, 'the first stream to be told of version 2');
    let late = 0;
    const stopLate = watcher.watchCollection('acme', 1, () => late++);
    await waitFor(() => late === 1, 2000, 'the late stream to be told of version 2');
    expect(first).toBe(1);
    stopFirst();
    stopLate();
  });
});
