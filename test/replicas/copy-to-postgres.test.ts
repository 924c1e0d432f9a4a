import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AuditServiceService } from '../../proto/gen/runkeys/v1/admin.js';
import { makeSandbox, probe, readReport, spawnAgent, stopAgents } from '../helpers/agent.js';
import { runCli } from '../helpers/cli.js';
import { describePostgres, type FreshDatabase, freshDatabase } from '../helpers/postgres.js';
import { Rpc } from '../helpers/rpc.js';
import { controlPlane, sandboxVariables } from '../helpers/runs.js';
import { createCollection, sampleValues, seedLayers } from '../helpers/seed.js';
import { startTestServer } from '../helpers/server.js';

// `runkeys server copy-to-postgres`: a SQLite store copied into an empty PostgreSQL database
// serves the same values, tokens and audit log there, under the same master key; the copy is
// refused while the SQLite server runs, with another key, or into a database that holds data.

const values = sampleValues('copy');

describePostgres('runkeys server copy-to-postgres', () => {
  let fresh: FreshDatabase;
  let dataDir = '';
  let rootToken = '';
  let masterKey = '';
  let auditBefore = 0;

  beforeAll(async () => {
    fresh = await freshDatabase('rk_copy');
    const srv = await startTestServer();
    dataDir = srv.dataDir;
    rootToken = srv.rootToken;
    const rpc = new Rpc(srv.address);
    await createCollection(rpc, rootToken, 'acme');
    await seedLayers(rpc, rootToken, 'acme', values);
    auditBefore = (
      await rpc.call(AuditServiceService.listAuditEvents, { pageSize: 1000 }, rootToken)
    ).events.length;
    rpc.close();
    masterKey = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();

    // While the SQLite server still runs, the copy is refused.
    const refused = await copy(fresh.url, masterKey);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('a control plane is running on the SQLite store');
    await srv.close();
  }, 60_000);

  afterAll(async () => {
    stopAgents();
    await fresh.drop();
  });

  const copy = (url: string, key: string) =>
    runCli(['server', 'copy-to-postgres', '--data-dir', dataDir, '--database-url', url], {
      env: { RUNKEYS_MASTER_KEY: key },
      timeoutMs: 30_000,
    });

  it('refuses a data dir that holds no store, rather than copy an empty one', async () => {
    const missing = join(dataDir, 'not-here');
    const res = await runCli(
      ['server', 'copy-to-postgres', '--data-dir', missing, '--database-url', fresh.url],
      { env: { RUNKEYS_MASTER_KEY: masterKey }, timeoutMs: 30_000 },
    );
    expect([res.code, res.stderr]).toEqual([
      2,
      `runkeys: no SQLite store in ${missing} (${join(missing, 'runkeys.db')} does not exist): ` +
        'give --data-dir of the store to copy\n',
    ]);
    expect(existsSync(missing)).toBe(false);
  });

  it('refuses a master key that does not open the SQLite store, copying nothing', async () => {
    const res = await copy(fresh.url, Buffer.alloc(32, 9).toString('base64'));
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('the master key does not open this store');
  });

  it('copies, and a replica on PostgreSQL serves the same values to a run', async () => {
    const res = await copy(fresh.url, masterKey);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(
      /^copied \d+ row\(s\) \(1 collection\(s\), 0 run\(s\), \d+ audit event/,
    );
    expect(res.stderr).not.toContain(fresh.url);

    const srv = await startTestServer({ databaseUrl: fresh.url, masterKey });
    const cp = controlPlane(srv.address, rootToken);
    const rpc = new Rpc(srv.address);
    try {
      // The root token of the SQLite store works, and the audit log came along, plus the copy.
      const audit = await rpc.call(
        AuditServiceService.listAuditEvents,
        { pageSize: 1000 },
        rootToken,
      );
      expect(audit.events.length).toBe(auditBefore + 1);
      expect(audit.events[0]?.action).toBe('store.copy');
      expect(audit.events[0]?.details).toMatchObject({
        from: 'sqlite',
        collections: '1',
        runs: '0',
      });
      // Sealed values open under the same key: a run gets them.
      const run = await cp.createRun('acme', 'anthropic');
      const sandbox = makeSandbox();
      const agent = spawnAgent({
        cwd: sandbox.dir,
        env: sandboxVariables(run, srv.address),
        command: probe(sandbox, 'exit:0'),
      });
      expect((await agent.exited).code, agent.stderr()).toBe(0);
      const env = readReport(sandbox).env;
      expect(env.ANTHROPIC_API_KEY).toBe(values.providers.anthropic!.apiKey);
      expect(env.SECRET_COPY).toBe('secret-copy');
      expect(env.GH_TOKEN).toBe(values.account.accessToken);
      // New audit events continue the copied sequence.
      const after = await rpc.call(
        AuditServiceService.listAuditEvents,
        { pageSize: 1000 },
        rootToken,
      );
      expect(after.events.length).toBeGreaterThan(audit.events.length);
    } finally {
      rpc.close();
      cp.close();
      await srv.close();
    }
  });

  it('refuses a database that already holds data', async () => {
    const res = await copy(fresh.url, masterKey);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/is not empty \(\w+ has \d+ rows\): copy into a new database/);
    expect(res.stderr).not.toContain('postgres://');
  });
});
