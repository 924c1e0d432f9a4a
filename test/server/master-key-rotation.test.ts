import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuditServiceService } from '../../proto/gen/runkeys/v1/admin.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import { Keyring, openValue } from '../../server/crypto/keyring.js';
import { SealError } from '../../server/crypto/seal.js';
import { accountTokensContext } from '../../server/services/accounts.js';
import { envVarContext } from '../../server/services/env-vars.js';
import { clientSecretContext } from '../../server/services/oauth-clients.js';
import { providerKeyContext } from '../../server/services/provider-keys.js';
import { openStore } from '../../server/store/open.js';
import { insertPresence } from '../../server/store/presence.js';
import { runCli } from '../helpers/cli.js';
import { Rpc } from '../helpers/rpc.js';
import { createCollection, type LayerValues, sampleValues, seedLayers } from '../helpers/seed.js';
import { startTestServer } from '../helpers/server.js';
import { openStoreReadOnly, snapshotStore } from '../helpers/store.js';

const COLLECTIONS = ['north', 'south'] as const;
const MISMATCH =
  'runkeys: the master key does not open this store (was RUNKEYS_MASTER_KEY or master.key changed?)\n';
const values = Object.fromEntries(COLLECTIONS.map((c) => [c, sampleValues(c)])) as Record<
  string,
  LayerValues
>;

const newKey = (): string => randomBytes(32).toString('base64');
const keyBytes = (b64: string): Buffer => Buffer.from(b64.trim(), 'base64');

/** Starts a server on dataDir, fills both collections, stops it; returns the root token. */
async function fill(dataDir: string, masterKey?: string): Promise<string> {
  const srv = await startTestServer({ dataDir, masterKey });
  const rpc = new Rpc(srv.address);
  for (const c of COLLECTIONS) {
    await createCollection(rpc, srv.rootToken, c);
    await seedLayers(rpc, srv.rootToken, c, values[c]!);
  }
  rpc.close();
  await srv.close();
  return srv.rootToken;
}

/** CLI runs start in an empty directory, where the default data dir ./.runkeys would land. */
const cwd = mkdtempSync(join(tmpdir(), 'runkeys-rotate-cwd-'));

function rotate(dataDir: string, env: Record<string, string> = {}) {
  return runCli(['server', 'rotate-master-key', '--data-dir', dataDir], {
    env,
    cwd,
    timeoutMs: 20_000,
  });
}

/** Opens every sealed column of the store with a master key, as the server would. */
function openEverything(dataDir: string, masterKey: string) {
  const keyring = new Keyring(keyBytes(masterKey));
  const db = openStoreReadOnly(dataDir);
  try {
    type Row = Record<string, string>;
    const rows = (table: string) => db.prepare(`SELECT * FROM ${table}`).all() as Row[];
    const keys = new Map(
      rows('collections').map((r) => [r.name!, keyring.openDataKey(r.name!, r.data_key_sealed!)]),
    );
    const k = (c: string) => keys.get(c)!;
    return {
      env: rows('env_vars').map((r) => [
        r.collection,
        r.name,
        openValue(k(r.collection!), envVarContext(r.collection!, r.name!), r.value_sealed!),
      ]),
      providers: rows('provider_keys').map((r) => [
        r.collection,
        r.provider,
        JSON.parse(
          openValue(
            k(r.collection!),
            providerKeyContext(r.collection!, r.provider!),
            r.credential_sealed!,
          ),
        ),
      ]),
      clientSecrets: rows('oauth_clients').map((r) => [
        r.collection,
        r.name,
        openValue(
          k(r.collection!),
          clientSecretContext(r.collection!, r.name!),
          r.client_secret_sealed!,
        ),
      ]),
      accounts: rows('accounts').map((r) => [
        r.collection,
        r.name,
        JSON.parse(
          openValue(
            k(r.collection!),
            accountTokensContext(r.collection!, r.name!),
            r.tokens_sealed!,
          ),
        ),
      ]),
    };
  } finally {
    db.close();
  }
}

type Opened = ReturnType<typeof openEverything>;

/** Rows in a fixed order, whatever order the store returned them in. */
function canonical(o: Opened): Opened {
  const sorted = (list: unknown[][]) =>
    [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return {
    env: sorted(o.env),
    providers: sorted(o.providers),
    clientSecrets: sorted(o.clientSecrets),
    accounts: sorted(o.accounts),
  } as Opened;
}

/** What openEverything must find: the values the seed wrote. */
function expected(): Opened {
  const snake = (s: string) => s.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
  return canonical({
    env: COLLECTIONS.flatMap((c) => Object.entries(values[c]!.env).map(([n, v]) => [c, n, v])),
    providers: COLLECTIONS.flatMap((c) =>
      Object.entries(values[c]!.providers).map(([p, cred]) => [
        c,
        p,
        Object.fromEntries(Object.entries(cred).map(([f, v]) => [snake(f), v])),
      ]),
    ),
    clientSecrets: COLLECTIONS.map((c) => [c, 'github', values[c]!.oauthClient.secret]),
    accounts: COLLECTIONS.map((c) => [
      c,
      'octocat',
      {
        access_token: values[c]!.account.accessToken,
        refresh_token: values[c]!.account.refreshToken,
        extra: {},
      },
    ]),
  } as Opened);
}

function expectOldKeyOpensNothing(dataDir: string, oldKey: string): void {
  const old = new Keyring(keyBytes(oldKey));
  const db = openStoreReadOnly(dataDir);
  const rows = db.prepare('SELECT name, data_key_sealed FROM collections').all() as {
    name: string;
    data_key_sealed: string;
  }[];
  db.close();
  expect(rows.map((r) => r.name).sort()).toEqual([...COLLECTIONS]);
  for (const r of rows) expect(() => old.openDataKey(r.name, r.data_key_sealed)).toThrow(SealError);
}

/** A running server on the rotated store: plain values read back, the rotation was audited. */
async function expectServesWith(dataDir: string, rootToken: string, masterKey?: string) {
  const srv = await startTestServer({ dataDir, masterKey });
  const rpc = new Rpc(srv.address);
  try {
    for (const c of COLLECTIONS) {
      const res = await rpc.call(
        EnvVarServiceService.getEnvVar,
        { collection: c, name: 'PLAIN_URL' },
        rootToken,
      );
      expect(res.envVar?.value).toBe('https://svc.example');
    }
    const audit = await rpc.call(
      AuditServiceService.listAuditEvents,
      { action: 'master_key.rotate' },
      rootToken,
    );
    expect(audit.events.map((e) => [e.actor, e.details])).toEqual([
      ['runkeys', { collections: '2' }],
    ]);
  } finally {
    rpc.close();
    await srv.close();
  }
}

async function startWithOldKey(dataDir: string, oldKey: string) {
  return runCli(
    ['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--http-listen', 'off'],
    {
      env: { RUNKEYS_MASTER_KEY: oldKey },
      cwd,
      timeoutMs: 20_000,
    },
  );
}

describe('runkeys server rotate-master-key with master.key in the data dir', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runkeys-rotate-file-'));
  const keyFile = join(dataDir, 'master.key');
  let rootToken: string;
  let oldKey: string;
  let result: Awaited<ReturnType<typeof rotate>>;

  beforeAll(async () => {
    rootToken = await fill(dataDir);
    oldKey = readFileSync(keyFile, 'utf8').trim();
    result = await rotate(dataDir);
  }, 60_000);

  it('re-seals both collection keys and writes the new key to master.key', () => {
    expect(result).toEqual({
      code: 0,
      stdout: '',
      stderr: 're-sealed 2 collection key(s); the new key is in master.key\n',
    });
    const current = readFileSync(keyFile, 'utf8').trim();
    expect(current).not.toBe(oldKey);
    expect(keyBytes(current)).toHaveLength(32);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dataDir, 'master.key.new'))).toBe(false);
  });

  it('rotates the store named by --data-dir after the subcommand, not ./.runkeys', () => {
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('opens every sealed value with the new key', () => {
    expect(canonical(openEverything(dataDir, readFileSync(keyFile, 'utf8')))).toEqual(expected());
  });

  it('no longer opens any data key with the old key', () => {
    expectOldKeyOpensNothing(dataDir, oldKey);
  });

  it('serves the store again after a restart', async () => {
    await expectServesWith(dataDir, rootToken);
  });

  it('refuses to start with the old key in RUNKEYS_MASTER_KEY', async () => {
    const res = await startWithOldKey(dataDir, oldKey);
    expect([res.code, res.stderr]).toEqual([2, MISMATCH]);
  });
});

describe('runkeys server rotate-master-key with the key in RUNKEYS_MASTER_KEY', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runkeys-rotate-env-'));
  const oldKey = newKey();
  const nextKey = newKey();
  let rootToken: string;

  beforeAll(async () => {
    rootToken = await fill(dataDir, oldKey);
  }, 60_000);

  it('refuses without RUNKEYS_NEW_MASTER_KEY and changes nothing', async () => {
    // SQLite's -wal and -shm come and go with connections; any other file would be a change.
    const files = () => readdirSync(dataDir).filter((f) => !/-(wal|shm)$/.test(f));
    const filesBefore = files();
    const before = snapshotStore(dataDir);
    const res = await rotate(dataDir, { RUNKEYS_MASTER_KEY: oldKey });
    expect(res).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'runkeys: the master key comes from RUNKEYS_MASTER_KEY: set RUNKEYS_NEW_MASTER_KEY to ' +
        'the new key (head -c 32 /dev/urandom | base64)\n',
    });
    expect(snapshotStore(dataDir)).toEqual(before);
    expect(files()).toEqual(filesBefore);
    expect(filesBefore).toEqual(['runkeys.db']);
  });

  it('re-seals both collection keys under RUNKEYS_NEW_MASTER_KEY', async () => {
    const res = await rotate(dataDir, {
      RUNKEYS_MASTER_KEY: oldKey,
      RUNKEYS_NEW_MASTER_KEY: nextKey,
    });
    expect(res).toEqual({
      code: 0,
      stdout: '',
      stderr:
        're-sealed 2 collection key(s); start the servers with RUNKEYS_MASTER_KEY set to the ' +
        'new key\n',
    });
    expect(existsSync(join(dataDir, 'master.key'))).toBe(false);
  });

  it('opens every sealed value with the new key', () => {
    expect(canonical(openEverything(dataDir, nextKey))).toEqual(expected());
  });

  it('no longer opens any data key with the old key', () => {
    expectOldKeyOpensNothing(dataDir, oldKey);
  });

  it('serves the store again with the new key', async () => {
    await expectServesWith(dataDir, rootToken, nextKey);
  });

  it('refuses to start with the old key', async () => {
    const res = await startWithOldKey(dataDir, oldKey);
    expect([res.code, res.stderr]).toEqual([2, MISMATCH]);
  });
});

describe('runkeys server rotate-master-key beside a running server', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runkeys-rotate-live-'));
  const keyFile = join(dataDir, 'master.key');

  it('refuses while the server runs, naming it, and changes nothing', async () => {
    await fill(dataDir);
    const oldKey = readFileSync(keyFile, 'utf8');
    const srv = await startTestServer({ dataDir });
    try {
      const files = () => readdirSync(dataDir).filter((f) => !/-(wal|shm)$/.test(f));
      const filesBefore = files();
      const before = snapshotStore(dataDir);
      const res = await rotate(dataDir);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        new RegExp(
          `^runkeys: a control plane is running on this store: \\S+ pid ${process.pid} ` +
            '\\(seen \\d+s ago\\)\\. Stop every server first',
        ),
      );
      expect(snapshotStore(dataDir)).toEqual(before);
      expect(files()).toEqual(filesBefore);
      expect(readFileSync(keyFile, 'utf8')).toBe(oldKey);
    } finally {
      await srv.close();
    }
    // Stopped, the server removed its presence: the rotation goes ahead.
    const res = await rotate(dataDir);
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(keyFile, 'utf8')).not.toBe(oldKey);
  });

  it('is not held up by a server that died without saying so (a stale heartbeat)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runkeys-rotate-stale-'));
    await fill(dir);
    const { db } = await openStore({ dataDir: dir }, pino({ level: 'silent' }));
    const long = Date.now() - 60_000;
    await insertPresence(db, {
      id: 'srv_gone',
      host: 'h',
      pid: 1,
      started_at: long,
      seen_at: long,
    });
    await db.destroy();
    const res = await rotate(dir);
    expect(res.code, res.stderr).toBe(0);
  });
});
