import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeWatcher } from '../../server/runs/watcher.js';
import { bumpVersion, insertCollection } from '../../server/store/collections.js';
import { type Db, migrate, openSqlite } from '../../server/store/db.js';
import { finishRun, insertRunKey } from '../../server/store/runs.js';
import type { RunTable } from '../../server/store/schema.js';
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
  await insertRunKey(db, {
    id: 'rk_test',
    public_key: 'unused',
    secret_sealed: 'unused',
    created_at: 0,
    retired_at: null,
  });
  watcher = new ChangeWatcher(db, pino({ level: 'silent' }), 20);
});

const runRow = (id: string): RunTable => ({
  id,
  collection: 'acme',
  provider: 'anthropic',
  auth: 'api_key',
  account: '',
  labels: '{}',
  state: 'attached',
  created_at: 0,
  expires_at: 1e13,
  ended_at: null,
  end_reason: '',
  created_by: 'test',
  run_key_id: 'rk_test',
  bootstrap_verifier: null,
  bootstrap_expires_at: 0,
  agent_public_key: null,
  attached_at: 0,
  resume_verifier: null,
  resume_prev_verifier: null,
  delivered_version: 0,
  report_seq: 0,
  applied_version: 0,
});

async function insertRuns(ids: string[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < ids.length; i += 500) {
      await trx
        .insertInto('runs')
        .values(ids.slice(i, i + 500).map(runRow))
        .execute();
    }
  });
}

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

  it('tells the streams of a run that it ended, without a hint, within a few ticks', async () => {
    await insertRuns(['run_unhinted']);
    const told: string[] = [];
    const stop = watcher.watchRun('run_unhinted', (state) => told.push(state));
    await new Promise((r) => setTimeout(r, 150));
    expect(told).toEqual([]);
    // Written straight to the store, as another process on the same SQLite file would.
    await db
      .updateTable('runs')
      .set({ state: 'expired', ended_at: 1 })
      .where('id', '=', 'run_unhinted')
      .execute();
    await waitFor(() => told.length > 0, 2000, 'the stream to be told the run expired');
    expect(told[0]).toBe('expired');
    stop();
  });

  it('reads run states at once when poked, between its slower run ticks', async () => {
    const slow = new ChangeWatcher(db, pino({ level: 'silent' }), 10_000, 1_000);
    try {
      await insertRuns(['run_poked']);
      const told: string[] = [];
      slow.watchRun('run_poked', (state) => told.push(state));
      expect(await finishRun(db, 'run_poked', 'ended', 5)).toBe(true);
      slow.poke();
      await waitFor(() => told.length > 0, 2000, 'the poked check to see the run ended');
      expect(told).toEqual(['ended']);
    } finally {
      slow.close();
    }
  });

  // Regression: the watched ids went into one IN list, which SQLite refuses past 32,766 bound
  // parameters (PostgreSQL past 65,535), so no run of a control plane with more streams was
  // told that it ended.
  it('watches more runs than one statement can bind', async () => {
    const ids = Array.from({ length: 40_000 }, (_, i) => `run_many_${String(i).padStart(5, '0')}`);
    await insertRuns(ids);
    const told = new Map<string, string>();
    const stops = ids.map((id) => watcher.watchRun(id, (state) => told.set(id, state)));
    const last = ids[ids.length - 1] ?? '';
    expect(await finishRun(db, last, 'ended', 7)).toBe(true);
    watcher.poke();
    await waitFor(() => told.size > 0, 5000, 'the last of 40,000 runs to be seen ended');
    expect([...told]).toEqual([[last, 'ended']]);
    for (const stop of stops) stop();
  }, 20_000);
});
