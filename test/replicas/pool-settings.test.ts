import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serverConfig } from '../../cli/commands/server.js';
import type { CliIo } from '../../cli/context.js';
import type { Db } from '../../server/store/db.js';
import { openStore } from '../../server/store/open.js';
import { isStoreUnavailable } from '../../server/store/postgres.js';
import { runCli } from '../helpers/cli.js';
import { describePostgres, type FreshDatabase, freshDatabase } from '../helpers/postgres.js';

// The PostgreSQL pool flags reach the pool: its size, how long a call waits for a connection,
// and when PostgreSQL cancels a statement. Mistakes in them are refused by name.

const io = (env: NodeJS.ProcessEnv): CliIo => ({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env,
});

/** The store as `runkeys server` would open it with these flags. */
async function storeWith(url: string, flags: Parameters<typeof serverConfig>[0]): Promise<Db> {
  const config = serverConfig({ databaseUrl: url, ...flags }, io({}));
  return (await openStore(config, pino({ level: 'silent' }))).db;
}

/** Why a promise failed: Kysely wraps the driver's error in `cause` on some paths. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

describePostgres('the PostgreSQL pool flags', () => {
  let fresh: FreshDatabase;
  beforeAll(async () => {
    fresh = await freshDatabase('rk_pool');
  });
  afterAll(() => fresh.drop());

  it('--db-pool-size caps the connections one replica opens', async () => {
    const pids = async (db: Db) => {
      const rows = await Promise.all(
        Array.from({ length: 6 }, () =>
          sql<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.2)`.execute(db),
        ),
      );
      return new Set(rows.map((r) => r.rows[0]!.pid)).size;
    };
    const two = await storeWith(fresh.url, { dbPoolSize: '2' });
    const byDefault = await storeWith(fresh.url, {});
    try {
      expect(await pids(two)).toBe(2);
      expect(await pids(byDefault)).toBe(6);
    } finally {
      await two.destroy();
      await byDefault.destroy();
    }
  });

  it('--db-acquire-timeout: a call that finds no free connection fails as unavailable', async () => {
    const db = await storeWith(fresh.url, { dbPoolSize: '1', dbAcquireTimeout: '0.3' });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = () => {};
    const holding = new Promise<void>((resolve) => {
      started = resolve;
    });
    const tx = db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx);
      started();
      await held;
    });
    try {
      await holding;
      const t0 = Date.now();
      const err = await failure(sql`select 1`.execute(db));
      // The default wait is 5 s: failing well before it means the flag reached the pool.
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(
        isStoreUnavailable(err) || isStoreUnavailable((err as { cause?: unknown }).cause),
      ).toBe(true);
    } finally {
      release();
      await tx;
      await db.destroy();
    }
  });

  it('a database that does not exist is named at start, exit 2, without the URL', async () => {
    const url = new URL(fresh.url);
    url.pathname = '/rk_missing_database';
    url.password = 'hunter2-canary';
    const res = await runCli(['server', '--database-url', url.href, '--http-listen', 'off'], {
      env: { RUNKEYS_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') },
      timeoutMs: 20_000,
    });
    expect([res.code, res.stderr]).toEqual([
      2,
      `runkeys: the database at ${url.hostname}:${url.port} has no such database (3D000): ` +
        'create it, or fix the name in --database-url\n',
    ]);
  });

  it('--db-statement-timeout: PostgreSQL cancels a longer statement', async () => {
    const db = await storeWith(fresh.url, { dbStatementTimeout: '0.3' });
    try {
      const t0 = Date.now();
      const err = await failure(sql`select pg_sleep(10)`.execute(db));
      expect(err.message).toContain('statement timeout');
      // Answered as UNAVAILABLE (nothing kept, try again), like a lost connection.
      expect(
        isStoreUnavailable(err) || isStoreUnavailable((err as { cause?: unknown }).cause),
      ).toBe(true);
      expect(Date.now() - t0).toBeLessThan(8000);
      // The pool still works after the cancelled statement.
      expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]!.one).toBe(1);
    } finally {
      await db.destroy();
    }
  });
});

it('refuses each pool flag without --database-url, and bad values by name', async () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const url = 'postgres://runkeys:hunter2-canary@127.0.0.1:1/runkeys';
  const cases: [string[], Record<string, string>, string][] = [
    [['--db-pool-size', '4'], {}, '--db-pool-size applies only with --database-url (PostgreSQL)'],
    [[], { RUNKEYS_DB_ACQUIRE_TIMEOUT: '2' }, '--db-acquire-timeout applies only with'],
    [
      ['--database-url', url, '--db-pool-size', '0x10'],
      { RUNKEYS_MASTER_KEY: key },
      '--db-pool-size must be a whole number of connections, 1 to 1000',
    ],
    [
      ['--database-url', url, '--db-pool-size', '0'],
      { RUNKEYS_MASTER_KEY: key },
      '--db-pool-size must be a whole number of connections, 1 to 1000',
    ],
    [
      ['--database-url', url, '--db-acquire-timeout', 'soon'],
      { RUNKEYS_MASTER_KEY: key },
      '--db-acquire-timeout must be seconds, above 0 and at most 3600',
    ],
    [
      ['--database-url', url, '--db-statement-timeout', '-1'],
      { RUNKEYS_MASTER_KEY: key },
      '--db-statement-timeout must be seconds, above 0 and at most 3600',
    ],
  ];
  for (const [flags, env, message] of cases) {
    const res = await runCli(['server', '--http-listen', 'off', ...flags], { env });
    expect(res.code, flags.join(' ')).toBe(2);
    expect(res.stderr).toContain(`runkeys: ${message}`);
    expect(res.stderr).not.toContain('hunter2-canary');
  }
});
