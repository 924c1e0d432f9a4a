/**
 * PostgreSQL for tests: the server test/global-setup.ts started (or the operator's, from
 * RUNKEYS_TEST_DATABASE_URL), and a fresh database per test file or test.
 *
 *   describePostgres('store on postgres', () => {
 *     let db: FreshDatabase;
 *     beforeAll(async () => { db = await freshDatabase(); });
 *     afterAll(() => db.drop());
 *     ...
 *   });
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, inject } from 'vitest';
import type {} from '../global-setup.js';

/** The admin URL of the test PostgreSQL server, or undefined when there is none. */
export function postgresUrl(): string | undefined {
  return inject('runkeysTestDatabaseUrl') ?? (process.env.RUNKEYS_TEST_DATABASE_URL || undefined);
}

/** Whether a test PostgreSQL server is available. */
export const pgAvailable: boolean = postgresUrl() !== undefined;

/** Why PostgreSQL tests are skipped; empty when they run. */
export const pgSkipReason: string = pgAvailable
  ? ''
  : (inject('runkeysTestDatabaseSkipReason') ??
    'no test PostgreSQL server (globalSetup test/global-setup.ts did not provide one)');

/**
 * `describe` for suites that need PostgreSQL: skipped, with the reason in the suite's name,
 * when there is no server. Under CI a missing server is an error, never a skip.
 */
export function describePostgres(name: string, fn: () => void): void {
  if (!pgAvailable && process.env.CI) {
    throw new Error(`${name}: CI must test PostgreSQL, but ${pgSkipReason}`);
  }
  if (pgAvailable) describe(name, fn);
  else describe.skip(`${name} [skipped: ${pgSkipReason}]`, fn);
}

export interface FreshDatabase {
  /** Its name, e.g. rk_0123456789ab. */
  name: string;
  /** Connection URL to it, as the admin user. */
  url: string;
  /** Ends every connection to it and drops it; safe to call twice. */
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = postgresUrl();
  if (url === undefined) throw new Error(`no test PostgreSQL server: ${pgSkipReason}`);
  return url;
}

async function asAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates a uniquely named, empty database (`<prefix>_<12 hex>`) on the test server. */
export async function freshDatabase(prefix = 'rk'): Promise<FreshDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new Error(`database prefix must be lower-case letters, digits, _: ${prefix}`);
  }
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await asAdmin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      asAdmin(async (client) => {
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}
