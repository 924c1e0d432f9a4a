/**
 * Vitest globalSetup: a throwaway PostgreSQL cluster on loopback for the tests that need one.
 *
 * - RUNKEYS_TEST_DATABASE_URL already set: that server is used as is (an operator's server).
 * - Else the newest /usr/lib/postgresql/<version>/bin is found and a cluster is started
 *   (test/helpers/pg-cluster.ts), and stopped and removed on teardown.
 * - No binaries: with CI set this throws (CI must test PostgreSQL); otherwise one warning line,
 *   and the tests written with test/helpers/postgres.ts skip, naming the reason.
 *
 * Workers get the admin URL both ways: `inject(DATABASE_URL_KEY)` and the environment variable
 * RUNKEYS_TEST_DATABASE_URL (forks copy process.env after globalSetup has run), so processes the
 * tests spawn inherit it too.
 */
import type { TestProject } from 'vitest/node';
import { findBinDir, PG_ROOT, startCluster } from './helpers/pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the test PostgreSQL server; absent when there is none. */
    runkeysTestDatabaseUrl?: string;
    /** Why there is no test PostgreSQL server; absent when there is one. */
    runkeysTestDatabaseSkipReason?: string;
  }
}

const ENV_URL = 'RUNKEYS_TEST_DATABASE_URL';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const given = process.env[ENV_URL];
  if (given) {
    project.provide('runkeysTestDatabaseUrl', given);
    return;
  }
  const binDir = findBinDir();
  if (binDir === undefined) {
    const reason =
      `no PostgreSQL found (${PG_ROOT}/*/bin/initdb); ` +
      `install the postgresql package or set ${ENV_URL}`;
    if (process.env.CI) throw new Error(`CI must test PostgreSQL, but ${reason}`);
    console.warn(`[global-setup] PostgreSQL tests will be skipped: ${reason}`);
    project.provide('runkeysTestDatabaseSkipReason', reason);
    return;
  }
  const started = Date.now();
  const cluster = await startCluster(binDir);
  if (process.env.RUNKEYS_TEST_PG_VERBOSE) {
    console.log(`[global-setup] PostgreSQL at ${cluster.url} in ${Date.now() - started} ms`);
  }
  project.provide('runkeysTestDatabaseUrl', cluster.url);
  process.env[ENV_URL] = cluster.url;
  return async () => {
    if (process.env[ENV_URL] === cluster.url) delete process.env[ENV_URL];
    await cluster.stop();
  };
}
