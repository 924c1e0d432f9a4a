import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountStatus, ConnectState } from '../../proto/gen/runkeys/v1/oauth.js';
import { openStore } from '../../server/store/open.js';
import { COLLECTION, type OAuthWorld, oauthWorld } from '../helpers/accounts.js';
import {
  adminClients,
  call,
  closeClients,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// A device flow outlives the process that started it: when that process stops (its lease on
// the flow released) or dies (its lease lapses), another process on the same store takes the
// polling over, and the account connects once the user approves.

let w: OAuthWorld;
let b: TestServer;
let adminB: ReturnType<typeof adminClients>;

beforeAll(async () => {
  w = await oauthWorld();
  await w.registerClient('idp');
  b = await startTestServer({ dataDir: w.srv.dataDir });
  adminB = adminClients(b.address);
}, 30_000);

afterAll(async () => {
  closeClients(adminB);
  await b.close();
  w.cp.close();
  closeClients(w.admin);
  await w.oidc.close();
});

const flowOnB = async (id: string) =>
  (
    await call(
      adminB.accounts.getConnectFlow.bind(adminB.accounts),
      { collection: COLLECTION, id },
      w.srv.rootToken,
    )
  ).flow!;

const accountOnB = async (name: string) =>
  (
    await call(
      adminB.accounts.getConnectedAccount.bind(adminB.accounts),
      { collection: COLLECTION, name },
      w.srv.rootToken,
    )
  ).account!;

const connectedOnB = (id: string) =>
  waitFor(
    async () =>
      (await flowOnB(id)).state === ConnectState.CONNECT_STATE_CONNECTED ? true : undefined,
    30_000,
    'the flow to connect through the other process',
  );

describe('device flow handover between processes', () => {
  it('a poller whose lease lapsed (it died) is replaced by one other process', async () => {
    const flow = await w.startConnect('after-crash', 'idp', true);
    // What a dead poller leaves: its lease, lapsed.
    const { db } = await openStore({ dataDir: w.srv.dataDir }, pino({ level: 'silent' }));
    await db
      .updateTable('connect_flows')
      .set({ poll_owner: 'proc_gone', poll_until: 0 })
      .where('id', '=', flow.id)
      .execute();
    await db.destroy();
    await w.oidc.approveDevice(flow.userCode);
    await connectedOnB(flow.id);
    expect((await accountOnB('after-crash')).status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    // One of the two running processes took it over, and only one connected it.
    const logs = w.srv.logs.text() + b.logs.text();
    expect(logs.split('"device flow taken over"').length - 1).toBe(1);
    expect(
      (await w.cp.auditOf(COLLECTION, 'after-crash')).filter((e) => e.action === 'account.connect'),
    ).toHaveLength(1);
  }, 40_000);

  it('a flow whose process stopped is finished by the other one', async () => {
    const flow = await w.startConnect('after-stop', 'idp', true);
    expect(flow.state).toBe(ConnectState.CONNECT_STATE_PENDING);
    await w.srv.close();
    await w.oidc.approveDevice(flow.userCode);
    await connectedOnB(flow.id);
    expect((await accountOnB('after-stop')).status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    expect(b.logs.text()).toContain('"device flow taken over"');
  }, 40_000);
});
