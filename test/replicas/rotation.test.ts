import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { describePostgres, type FreshDatabase, freshDatabase } from '../helpers/postgres.js';
import { startTestServer } from '../helpers/server.js';

// rotate-master-key on PostgreSQL refuses while a replica runs on the database, and goes ahead
// once every replica stopped (its transaction locks server_presence, so a replica starting
// meanwhile waits for it and then meets the new check value).

describePostgres('rotate-master-key beside PostgreSQL replicas', () => {
  let fresh: FreshDatabase;
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  beforeAll(async () => {
    fresh = await freshDatabase('rk_rotate');
  });
  afterAll(() => fresh.drop());

  const rotate = () =>
    runCli(['server', 'rotate-master-key'], {
      env: {
        RUNKEYS_DATABASE_URL: fresh.url,
        RUNKEYS_MASTER_KEY: oldKey,
        RUNKEYS_NEW_MASTER_KEY: newKey,
      },
      timeoutMs: 20_000,
    });

  it('refuses while a replica runs, then rotates once it stopped', async () => {
    const replicas = [
      await startTestServer({ databaseUrl: fresh.url, masterKey: oldKey }),
      await startTestServer({ databaseUrl: fresh.url, masterKey: oldKey }),
    ];
    const refused = await rotate();
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('a control plane is running on this store');
    expect(refused.stderr.match(/pid \d+/g)).toHaveLength(2);
    for (const r of replicas) await r.close();

    const done = await rotate();
    expect(done.code, done.stderr).toBe(0);
    // The old key no longer opens the store; the new one does.
    await expect(startTestServer({ databaseUrl: fresh.url, masterKey: oldKey })).rejects.toThrow(
      /master key does not open this store/,
    );
    const again = await startTestServer({ databaseUrl: fresh.url, masterKey: newKey });
    await again.close();
  });
});
