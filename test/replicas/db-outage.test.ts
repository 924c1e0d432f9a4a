import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreUnavailable, openPostgres } from '../../server/store/postgres.js';
import { LightAgent } from '../helpers/accounts.js';
import { freshDatabase, postgresUrl } from '../helpers/postgres.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { failure, startTestServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// The database goes away under a running control plane (a TCP proxy in front of PostgreSQL is
// cut): calls answer UNAVAILABLE and change nothing; once it is back, the same calls work and
// the change feed catches up, so an attached agent still gets what changed.

/** A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused). */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      server === undefined ? resolve() : server.close(() => resolve()),
    );
  }
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let proxy: CuttableProxy;
let proxiedUrl: string;
let srv: TestServer;
let cp: ControlPlane;

describe.skipIf(postgresUrl() === undefined)(
  'the database lost under a running control plane',
  () => {
    beforeAll(async () => {
      db = await freshDatabase();
      const url = new URL(db.url);
      proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
      await proxy.open();
      url.port = String(proxy.port);
      proxiedUrl = url.href;
      srv = await startTestServer({ databaseUrl: proxiedUrl });
      cp = controlPlane(srv.address, srv.rootToken);
      await cp.createCollection('acme');
      await cp.setProvider('acme', 'openai', { apiKey: 'sk-outage-test-000000001' });
      await cp.setEnv('acme', 'FEATURE', 'before', false);
    });

    afterAll(async () => {
      cp?.close();
      await proxy?.cut();
      await srv?.close();
      await db?.drop();
    });

    it('answers UNAVAILABLE meanwhile, changes nothing, and recovers', async () => {
      const agent = new LightAgent(cp.agent, await cp.createRun('acme', 'openai'));
      try {
        await waitFor(() => agent.value('FEATURE') === 'before', 5_000, 'the first bundle');
        await proxy.cut();

        const down = await failure(cp.setEnv('acme', 'FEATURE', 'during', false));
        expect(down).toEqual({
          code: status.UNAVAILABLE,
          details: 'the store is unavailable; nothing was changed, try again',
        });
        // The agent keeps what it holds while the store is away.
        expect(agent.value('FEATURE')).toBe('before');

        await proxy.open();
        // The pool makes new connections on demand: the first call after may still fail.
        await waitFor(
          () =>
            cp.setEnv('acme', 'FEATURE', 'after', false).then(
              () => true,
              () => false,
            ),
          10_000,
          'the store to answer again',
        );
        await waitFor(() => agent.value('FEATURE') === 'after', 5_000, 'the change after recovery');
        const seen = agent.bundles.map((b) => b.entries.find((e) => e.name === 'FEATURE')?.value);
        expect(seen).not.toContain('during');
      } finally {
        agent.stop();
      }
    }, 30_000);

    // A connection checked out of the pool (here: held by a transaction between two queries)
    // reports its loss on the client, where the pool no longer listens; unheard, that 'error'
    // event would crash the control plane. It must fail the transaction, and only that.
    it('fails a transaction whose connection dies mid-way, and nothing else', async () => {
      const store = openPostgres(proxiedUrl, pino({ level: 'silent' }));
      try {
        const failed = await store
          .transaction()
          .execute(async (trx) => {
            await sql`select 1`.execute(trx);
            await proxy.cut();
            await new Promise((resolve) => setTimeout(resolve, 200));
            await sql`select 1`.execute(trx);
          })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(isStoreUnavailable(failed)).toBe(true);

        await proxy.open();
        await waitFor(
          () =>
            sql`select 1`.execute(store).then(
              () => true,
              () => false,
            ),
          10_000,
          'a new connection',
        );
      } finally {
        await store.destroy();
      }
    }, 30_000);
  },
);
