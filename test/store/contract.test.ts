import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertAuditEvent, listAuditEvents } from '../../server/store/audit.js';
import {
  bumpVersion,
  collectionVersions,
  getCollection,
  insertCollection,
} from '../../server/store/collections.js';
import { type Db, migrate } from '../../server/store/db.js';
import { insertAccount, takeLease, writeUnderFence } from '../../server/store/oauth.js';
import { openStore } from '../../server/store/open.js';
import { CHANGES_CHANNEL } from '../../server/store/postgres.js';
import {
  claimBootstrap,
  finishRun,
  getRun,
  getRunWithCollection,
  insertRun,
  insertRunKey,
} from '../../server/store/runs.js';
import type { RunTable } from '../../server/store/schema.js';
import { freshDatabase, postgresUrl } from '../helpers/postgres.js';

// The store's contract, run against SQLite and PostgreSQL alike: the same schema and queries
// give the same answers, numbers come back as numbers, and the rules that keep a secret single
// use or a refresh single flight hold when callers race.

const log = pino({ level: 'silent' });

interface Subject {
  name: 'sqlite' | 'postgres';
  open(): Promise<{ db: Db; close(): Promise<void>; url?: string }>;
}

const SUBJECTS: Subject[] = [
  {
    name: 'sqlite',
    async open() {
      const { db } = await openStore({ dataDir: mkdtempSync(join(tmpdir(), 'rk-contract-')) }, log);
      return { db, close: () => db.destroy() };
    },
  },
  {
    name: 'postgres',
    async open() {
      const fresh = await freshDatabase();
      const { db } = await openStore({ dataDir: '', databaseUrl: fresh.url }, log);
      return {
        db,
        url: fresh.url,
        close: async () => {
          await db.destroy();
          await fresh.drop();
        },
      };
    },
  },
];

const run = (id: string, over: Partial<RunTable> = {}): RunTable => ({
  id,
  collection: 'acme',
  provider: 'openai',
  auth: 'api_key',
  account: '',
  labels: '{}',
  state: 'pending',
  created_at: 1_700_000_000_000,
  expires_at: 1_700_003_600_000,
  ended_at: null,
  end_reason: '',
  created_by: 'tok_test',
  run_key_id: 'rk_1',
  bootstrap_verifier: 'verifier-1',
  bootstrap_expires_at: 1_700_000_600_000,
  agent_public_key: null,
  attached_at: null,
  resume_verifier: null,
  resume_prev_verifier: null,
  delivered_version: 0,
  report_seq: 0,
  applied_version: 0,
  ...over,
});

for (const subject of SUBJECTS) {
  const pgMissing = subject.name === 'postgres' && postgresUrl() === undefined;
  describe.skipIf(pgMissing)(`the store on ${subject.name}`, () => {
    let store: Awaited<ReturnType<Subject['open']>>;
    let db: Db;

    beforeAll(async () => {
      store = await subject.open();
      db = store.db;
      await insertCollection(db, {
        name: 'acme',
        description: '',
        data_key_sealed: 'sealed',
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        created_by: 'tok_test',
      });
      await insertRunKey(db, {
        id: 'rk_1',
        public_key: 'pk',
        secret_sealed: 'sk',
        created_at: 1,
        retired_at: null,
      });
    });
    afterAll(() => store?.close());

    it('migrating again changes nothing', async () => {
      await migrate(db, subject.name);
      expect((await getCollection(db, 'acme'))?.name).toBe('acme');
    });

    it('gives numbers back as numbers, including bigint columns', async () => {
      const row = (await getCollection(db, 'acme'))!;
      expect(row.created_at).toBe(1_700_000_000_000);
      expect(typeof row.version).toBe('number');
    });

    it('bumps versions one at a time under concurrent writers', async () => {
      const before = (await collectionVersions(db, ['acme']))[0]!.version;
      await Promise.all(
        Array.from({ length: 20 }, () =>
          db.transaction().execute((trx) => bumpVersion(trx, 'acme')),
        ),
      );
      expect((await collectionVersions(db, ['acme']))[0]!.version).toBe(Number(before) + 20);
    });

    it('a bootstrap secret is claimed once, however many claim it at once', async () => {
      await insertRun(db, run('run_000000000000c1a1'));
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          db.transaction().execute((trx) =>
            claimBootstrap(trx, 'run_000000000000c1a1', 'verifier-1', {
              agent_public_key: `key-${i}`,
              attached_at: 2,
              resume_verifier: `resume-${i}`,
              delivered_version: 1,
            }),
          ),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('reads a run with its collection as the two reads would, numbers as numbers', async () => {
      await insertRun(db, run('run_000000000000b0b0', { delivered_version: 7 }));
      const both = await getRunWithCollection(db, 'run_000000000000b0b0');
      expect(both).toEqual({
        run: await getRun(db, 'run_000000000000b0b0'),
        collection: await getCollection(db, 'acme'),
      });
      expect(both?.run.delivered_version).toBe(7);
      expect(typeof both?.collection.version).toBe('number');
      expect(await getRunWithCollection(db, 'run_00000000000000ff')).toBeUndefined();
    });

    it('a run ends once', async () => {
      await insertRun(db, run('run_000000000000e2d2'));
      const ends = await Promise.all([
        finishRun(db, 'run_000000000000e2d2', 'ended', 3),
        finishRun(db, 'run_000000000000e2d2', 'expired', 3),
      ]);
      expect(ends.filter(Boolean)).toHaveLength(1);
    });

    it('one refresh lease at a time, and a taken-over holder cannot write', async () => {
      await db
        .insertInto('oauth_clients')
        .values({
          collection: 'acme',
          name: 'gh',
          config: '{}',
          client_secret_sealed: null,
          created_at: 1,
          updated_at: 1,
          created_by: 't',
          updated_by: 't',
        })
        .execute();
      await insertAccount(db, {
        collection: 'acme',
        name: 'octo',
        client: 'gh',
        status: 'connected',
        scopes: '',
        tokens_sealed: 'sealed-0',
        refresh_token_set: 1,
        access_expires_at: 10,
        last_refresh_at: null,
        last_error: '',
        created_at: 1,
        updated_at: 1,
        created_by: 't',
        lifetime_ms: 10,
        fence: 0,
        lease_owner: null,
        lease_until: null,
        lease_taken_over: 0,
        next_attempt_at: null,
        failures: 0,
      });
      const leases = await Promise.all(
        Array.from({ length: 10 }, (_, i) => takeLease(db, 'acme', 'octo', `p${i}`, 100, 1_000)),
      );
      const won = leases.filter((l) => l !== undefined);
      expect(won).toHaveLength(1);
      const first = won[0]!;
      expect(first.interrupted).toBe(false);
      // The lease runs out; another takes it over, and learns it was never released.
      const second = (await takeLease(db, 'acme', 'octo', 'late', 2_000, 1_000))!;
      expect(second).toEqual({ fence: first.fence + 1, interrupted: true });
      expect(await writeUnderFence(db, 'acme', 'octo', first.fence, { tokens_sealed: 'x' })).toBe(
        false,
      );
      expect(
        await writeUnderFence(db, 'acme', 'octo', second.fence, { tokens_sealed: 'sealed-1' }),
      ).toBe(true);
      const row = await db
        .selectFrom('accounts')
        .select(['tokens_sealed', 'lease_owner'])
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ tokens_sealed: 'sealed-1', lease_owner: null });
    });

    it('pages the audit log by sequence, newest first', async () => {
      const events = Array.from({ length: 5 }, (_, i) => ({
        id: `evt_contract_${subject.name}_${i}`,
        time: 10 + i,
        actor: 't',
        collection: 'acme',
        action: 'env_var.update',
        target: `V${i}`,
        fingerprint: '',
        details: '{}',
      }));
      await insertAuditEvent(db, events);
      const page = await listAuditEvents(db, { collection: 'acme', action: 'env_var.update' }, 3);
      expect(page.map((e) => e.target)).toEqual(['V4', 'V3', 'V2']);
    });

    it.skipIf(subject.name !== 'postgres')(
      'notifies listeners of a version bump at commit, and not on rollback',
      async () => {
        const listener = new pg.Client({ connectionString: store.url });
        await listener.connect();
        const heard: string[] = [];
        listener.on('notification', (n) => heard.push(n.payload ?? ''));
        await listener.query(`LISTEN ${CHANGES_CHANNEL}`);
        try {
          await db
            .transaction()
            .execute(async (trx) => {
              await bumpVersion(trx, 'acme');
              throw new Error('roll back');
            })
            .catch(() => {});
          await db.transaction().execute((trx) => bumpVersion(trx, 'acme'));
          await sql`select 1`.execute(db);
          await new Promise((r) => setTimeout(r, 200));
          expect(heard).toEqual(['acme']);
        } finally {
          await listener.end();
        }
      },
    );
  });
}
