import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditRetention } from '../../server/audit-retention.js';
import { insertAuditEvent, listAuditEvents } from '../../server/store/audit.js';
import type { Db } from '../../server/store/db.js';
import { openStore } from '../../server/store/open.js';
import { runCli } from '../helpers/cli.js';
import { freshDatabase, postgresUrl } from '../helpers/postgres.js';
import { startTestServer } from '../helpers/server.js';

// --audit-retention: the sweep deletes the events older than the period, and only those, in
// batches, and records how many it deleted; replicas sweeping together delete each event once.

const log = pino({ level: 'silent' });
const DAY = 24 * 3600_000;
const NOW = 1_800_000_000_000;

const stores: { name: string; open(): Promise<{ db: Db; close(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    async open() {
      const { db } = await openStore(
        { dataDir: mkdtempSync(join(tmpdir(), 'rk-retention-')) },
        log,
      );
      return { db, close: () => db.destroy() };
    },
  },
];
if (postgresUrl() !== undefined || process.env.CI) {
  stores.push({
    name: 'postgres',
    async open() {
      const fresh = await freshDatabase('rk_retention');
      const { db } = await openStore({ dataDir: '', databaseUrl: fresh.url }, log);
      return {
        db,
        close: async () => {
          await db.destroy();
          await fresh.drop();
        },
      };
    },
  });
}

/** `n` events, one a minute, the last at `end`. */
async function eventsUpTo(db: Db, end: number, n: number, tag: string): Promise<void> {
  await insertAuditEvent(
    db,
    Array.from({ length: n }, (_, i) => ({
      id: `evt_${tag}_${i}`,
      time: end - (n - 1 - i) * 60_000,
      actor: 'tok_test',
      collection: 'acme',
      action: 'env.set',
      target: `VAR_${i}`,
      fingerprint: '',
      details: '{}',
    })),
  );
}

const retention = (db: Db, batch = 7) =>
  new AuditRetention(db, { keepMs: 30 * DAY, everyMs: 60_000, batch }, () => NOW, log);

describe.each(stores)('audit retention on $name', (store) => {
  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened) await o.close();
  });

  it('deletes the events older than the period, in batches, and records the count', async () => {
    const s = await store.open();
    opened.push(s);
    await eventsUpTo(s.db, NOW - 30 * DAY - 1, 30, 'old');
    await eventsUpTo(s.db, NOW, 5, 'new');
    expect(await retention(s.db).sweep()).toBe(30);
    const left = await listAuditEvents(s.db, {}, 100);
    const pruned = left.filter((e) => e.action === 'audit.prune');
    expect(
      left
        .filter((e) => e.action === 'env.set')
        .map((e) => e.id)
        .sort(),
    ).toEqual(Array.from({ length: 5 }, (_, i) => `evt_new_${i}`).sort());
    expect(pruned).toHaveLength(1);
    expect(JSON.parse(pruned[0]!.details)).toEqual({
      deleted: 30,
      before: new Date(NOW - 30 * DAY).toISOString(),
    });
    // Nothing more to delete: no second record.
    expect(await retention(s.db).sweep()).toBe(0);
    expect((await listAuditEvents(s.db, { action: 'audit.prune' }, 10)).length).toBe(1);
  });

  it('two replicas sweeping at once delete each event once', async () => {
    const s = await store.open();
    opened.push(s);
    await eventsUpTo(s.db, NOW - 40 * DAY, 200, 'old');
    await eventsUpTo(s.db, NOW, 3, 'new');
    const counts = await Promise.all([retention(s.db, 16).sweep(), retention(s.db, 16).sweep()]);
    expect(counts[0]! + counts[1]!).toBe(200);
    const left = await listAuditEvents(s.db, { action: 'env.set' }, 500);
    expect(left.map((e) => e.id).sort()).toEqual(['evt_new_0', 'evt_new_1', 'evt_new_2']);
  });
});

describe('runkeys server --audit-retention', () => {
  it('sweeps at start: a restart two days on, with one day kept, leaves only its own record', async () => {
    const first = await startTestServer();
    const dataDir = first.dataDir;
    await first.close();
    const later = await startTestServer({
      dataDir,
      auditRetentionMs: DAY,
      now: () => Date.now() + 2 * DAY,
    });
    try {
      const { db } = await openStore({ dataDir }, log);
      try {
        const events = async () => listAuditEvents(db, {}, 100);
        await expect
          .poll(async () => (await events()).map((e) => e.action))
          .toEqual(['audit.prune']);
        const { deleted } = JSON.parse((await events())[0]!.details) as { deleted: number };
        expect(deleted).toBeGreaterThan(0);
      } finally {
        await db.destroy();
      }
    } finally {
      await later.close();
    }
  });

  it('refuses a period under a day, or one it cannot read, by name', async () => {
    for (const value of ['12h', '0d', 'forever', '1.5d', '', '200000000d', '36501d']) {
      const res = await runCli(['server', '--audit-retention', value, '--http-listen', 'off']);
      expect(res.code, value).toBe(2);
      expect(res.stderr).toBe(
        'runkeys: --audit-retention must be from a day to 36500 days, in days (90d) or hours ' +
          '(2160h); ' +
          `got ${JSON.stringify(value)}\n`,
      );
    }
  });
});
