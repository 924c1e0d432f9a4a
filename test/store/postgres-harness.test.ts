import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describePostgres,
  type FreshDatabase,
  freshDatabase,
  postgresUrl,
} from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const databaseExists = (name: string) =>
  withClient(postgresUrl()!, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return rowCount === 1;
  });

describePostgres('the PostgreSQL test harness', () => {
  const made: FreshDatabase[] = [];
  let a: FreshDatabase;
  let b: FreshDatabase;

  beforeAll(async () => {
    a = await freshDatabase();
    b = await freshDatabase();
    made.push(a, b);
  });
  afterAll(async () => {
    for (const db of made) await db.drop();
  });

  it('serves PostgreSQL', async () => {
    const version = await withClient(postgresUrl()!, async (client) => {
      const { rows } = await client.query<{ version: string }>('SELECT version()');
      return rows[0]!.version;
    });
    expect(version).toMatch(/^PostgreSQL \d+/);
  });

  it('also hands the URL to processes through the environment', () => {
    expect(process.env.RUNKEYS_TEST_DATABASE_URL).toBe(postgresUrl());
  });

  it('gives each caller its own database', async () => {
    expect(a.name).toMatch(/^rk_[0-9a-f]{12}$/);
    expect(b.name).not.toBe(a.name);
    expect(new URL(a.url).pathname).toBe(`/${a.name}`);

    await withClient(a.url, (client) => client.query('CREATE TABLE only_in_a (id int)'));
    const tables = (url: string) =>
      withClient(url, async (client) => {
        const { rows } = await client.query<{ tablename: string }>(
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        );
        return rows.map((r) => r.tablename);
      });
    expect(await tables(a.url)).toEqual(['only_in_a']);
    expect(await tables(b.url)).toEqual([]);
  });

  it('drops a database, even with a connection still open', async () => {
    const c = await freshDatabase('rk_drop');
    made.push(c);
    expect(await databaseExists(c.name)).toBe(true);

    const open = new pg.Client({ connectionString: c.url });
    const errors: Error[] = [];
    open.on('error', (err) => errors.push(err));
    const ended = new Promise((resolve) => open.once('end', resolve));
    await open.connect();
    await c.drop();
    await ended;
    expect(errors.map((e) => e.message).join()).toMatch(/terminat/);
    expect(await databaseExists(c.name)).toBe(false);
    await c.drop(); // twice is fine
  });

  it('round-trips LISTEN/NOTIFY between two clients', async () => {
    const listener = new pg.Client({ connectionString: b.url });
    const notifier = new pg.Client({ connectionString: b.url });
    await listener.connect();
    await notifier.connect();
    try {
      const got: { channel: string; payload: string | undefined }[] = [];
      listener.on('notification', (n) => got.push({ channel: n.channel, payload: n.payload }));
      await listener.query('LISTEN runkeys_test');
      await notifier.query("SELECT pg_notify('runkeys_test', 'hello')");
      await waitFor(() => got.length > 0, 5_000, 'the notification');
      expect(got).toEqual([{ channel: 'runkeys_test', payload: 'hello' }]);
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });
});
