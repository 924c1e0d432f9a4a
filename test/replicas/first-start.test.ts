import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { MasterKeyMismatch } from '../../server/crypto/keyring.js';
import { ensureRootToken } from '../../server/first-start.js';
import { openKeyring } from '../../server/keys-at-start.js';
import { countRootTokens } from '../../server/store/admin-tokens.js';
import type { Db } from '../../server/store/db.js';
import { openStore } from '../../server/store/open.js';
import { describePostgres, freshDatabase } from '../helpers/postgres.js';

// Replicas that start together on an empty PostgreSQL database race to make the root token
// (exactly one may make it, and only that one may show it) and to store the master key's check
// value (a replica started with another master key must be refused, not seal with it).

const log = pino({ level: 'silent' });
const stores: Db[] = [];
const databases: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const db of stores.splice(0)) await db.destroy();
  for (const drop of databases.splice(0)) await drop();
});

/** `n` stores opened on one new database, as `n` replicas starting would open them. */
async function replicasOnFreshDatabase(n: number): Promise<Db[]> {
  const fresh = await freshDatabase();
  databases.push(fresh.drop);
  const replicas: Db[] = [];
  for (let i = 0; i < n; i++) {
    const { db } = await openStore({ dataDir: '', databaseUrl: fresh.url }, log);
    replicas.push(db);
    stores.push(db);
  }
  return replicas;
}

describePostgres('replicas starting together on an empty database', () => {
  it('make one root token between them, shown by one replica only', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const replicas = await replicasOnFreshDatabase(4);
      const shown = replicas.map(() => '');
      await Promise.all(
        replicas.map((db, i) => {
          const stderr = new PassThrough();
          stderr.on('data', (chunk: Buffer) => {
            shown[i] += chunk.toString();
          });
          return ensureRootToken(db, { stderr }, log);
        }),
      );
      expect(await countRootTokens(replicas[0]!)).toBe(1);
      expect(shown.filter((s) => s.includes('The root token, shown only this once'))).toHaveLength(
        1,
      );
    }
  }, 60_000);

  it('keep the first master key check stored and refuse a replica with another key', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const replicas = await replicasOnFreshDatabase(4);
      // Two replicas with one master key, two with another.
      const keys = [randomBytes(32), randomBytes(32)].map((k) => k.toString('base64'));
      const outcomes = await Promise.all(
        replicas.map((db, i) =>
          openKeyring(db, '', keys[i % 2], log).then(
            () => 'opened',
            (err: unknown) => (err instanceof MasterKeyMismatch ? 'refused' : String(err)),
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'opened')).toHaveLength(2);
      expect(outcomes.filter((o) => o === 'refused')).toHaveLength(2);
      // The two that opened hold the same key.
      expect(outcomes[0]).toBe(outcomes[2]);
    }
  }, 60_000);
});
