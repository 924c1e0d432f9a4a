import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AccountStatus } from '../../proto/gen/runkeys/v1/oauth.js';
import { COLLECTION, LightAgent, type OAuthWorld, oauthWorld } from '../helpers/accounts.js';
import { leaksIn } from '../helpers/canary.js';
import { adminClients, call, closeClients, failure, startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// Refresh against a real authorization server (oidc-provider) that rotates refresh tokens and
// revokes the whole grant when an old one is reused: one token request however many runs
// share the account, nothing lost while the provider is down, a revoked grant marked once.

let w: OAuthWorld | undefined;
const agents: LightAgent[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) a.stop();
  await w?.close();
  w = undefined;
});

async function setup(opts: Parameters<typeof oauthWorld>[0]): Promise<OAuthWorld> {
  w = await oauthWorld(opts);
  await w.cp.setProvider(COLLECTION, 'anthropic', { apiKey: 'sk-ant-refresh-test-0001' });
  await w.registerClient('gh');
  return w;
}

async function attach(world: OAuthWorld, n: number): Promise<LightAgent[]> {
  const runs = await Promise.all(
    Array.from({ length: n }, () => world.cp.createRun(COLLECTION, 'anthropic')),
  );
  const started = runs.map((r) => new LightAgent(world.cp.agent, r));
  agents.push(...started);
  await waitFor(() => started.every((a) => a.value('GH_TOKEN') !== undefined), 20_000, 'bundles');
  return started;
}

const refreshNow = (world: OAuthWorld, name: string) =>
  call(
    world.admin.accounts.refreshConnectedAccount.bind(world.admin.accounts),
    { collection: COLLECTION, name },
    world.srv.rootToken,
  );

describe('refreshing a shared account', () => {
  it('200 runs across an expiry: one token request, every agent the same new token', async () => {
    const world = await setup({
      accessTokenTtlSeconds: 6,
      refresh: { minMarginMs: 2_000, sweepMs: 200 },
    });
    await world.connect('octo', 'gh');
    const connectedAt = Date.now();
    const fleet = await attach(world, 200);
    const first = fleet[0]!.value('GH_TOKEN')!;
    expect(fleet.every((a) => a.value('GH_TOKEN') === first)).toBe(true);
    const expiry = (await world.account('octo')).accessTokenExpireTime!.getTime();

    // Every agent asks at once when the token falls due, racing the control plane's sweep.
    await waitFor(() => Date.now() >= expiry - 2_000, 10_000, 'the refresh margin');
    const answers = await Promise.all(fleet.map((a) => a.ask(world.cp.agent, 'octo')));
    expect(answers.filter((a) => a !== undefined)).toEqual([]);

    await waitFor(
      () => fleet.every((a) => (a.value('GH_TOKEN') ?? first) !== first),
      5_000,
      'every agent to hold the new token',
    );
    const next = fleet[0]!.value('GH_TOKEN')!;
    expect(new Set(fleet.map((a) => a.value('GH_TOKEN')))).toEqual(new Set([next]));
    // Past the old token's expiry, still one refresh.
    await waitFor(() => Date.now() > connectedAt + 6_500, 10_000, 'the old expiry');
    expect(world.oidc.tokenRequests('refresh_token')).toBe(1);
    expect(world.oidc.tokenRequestLog().filter((r) => r.status !== 200)).toEqual([]);
    const account = await world.account('octo');
    expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    expect(account.lastError).toBe('');
    const tokens = [
      { label: 'first', value: first },
      { label: 'next', value: next },
    ];
    expect(leaksIn(world.srv.logs.text(), tokens)).toEqual([]);
  }, 60_000);

  it('the provider down for 10 s while the token is valid: no run loses it, one refresh after', async () => {
    // A 24 s token refreshed 12 s before it expires; the provider goes away for 10 s just
    // before that point and comes back while the token is still valid.
    const world = await setup({
      accessTokenTtlSeconds: 24,
      refresh: { minMarginMs: 13_000, sweepMs: 200 },
    });
    await world.connect('octo', 'gh');
    const fleet = await attach(world, 5);
    const first = fleet[0]!.value('GH_TOKEN')!;
    const expiry = (await world.account('octo')).accessTokenExpireTime!.getTime();

    await waitFor(() => Date.now() >= expiry - 14_000, 15_000, 'just before the margin');
    await world.oidc.stop();
    world.oidc.resetCounts();
    await waitFor(
      async () =>
        (await world.account('octo')).status === AccountStatus.ACCOUNT_STATUS_REFRESH_FAILING,
      5_000,
      'refresh_failing',
    );
    const failing = await world.account('octo');
    expect(failing.lastError).toMatch(/^refresh failed: /);
    await new Promise((r) => setTimeout(r, 10_000 - (Date.now() - (expiry - 14_000))));
    // Every bundle the agents received meanwhile still carried the token.
    for (const a of fleet) {
      expect(a.bundles.every((b) => b.entries.some((e) => e.name === 'GH_TOKEN'))).toBe(true);
      expect(a.value('GH_TOKEN')).toBe(first);
    }
    await world.oidc.start();

    await waitFor(
      () => fleet.every((a) => (a.value('GH_TOKEN') ?? first) !== first),
      Math.max(1_000, expiry - Date.now()),
      'the new token before the old one expired',
    );
    expect(Date.now()).toBeLessThan(expiry);
    expect(world.oidc.tokenRequests('refresh_token')).toBe(1);
    const account = await world.account('octo');
    expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    expect(account.lastError).toBe('');
  }, 60_000);

  it('consent revoked at the provider: needs_reconnect once, agents told, no retry loop', async () => {
    const world = await setup({ accessTokenTtlSeconds: 300, refresh: { sweepMs: 200 } });
    await world.connect('octo', 'gh');
    const [agent] = await attach(world, 1);
    expect(await world.oidc.revokeAllGrants()).toBe(1);

    const err = await failure(refreshNow(world, 'octo'));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toBe(
      `account "octo" needs reconnecting: runkeys accounts connect --collection ${COLLECTION} ` +
        '--name octo CLIENT',
    );
    const account = await world.account('octo');
    expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT);
    expect(account.lastError).toMatch(/^invalid_grant \(HTTP 400\): the grant is gone/);

    await waitFor(() => agent!.value('GH_TOKEN') === undefined, 2_000, 'the token removed');
    expect(agent!.latest()!.accounts).toEqual([
      expect.objectContaining({ name: 'octo', status: 'needs_reconnect' }),
    ]);
    // Sweeps, admin refreshes and agent asks all leave it alone.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await failure(refreshNow(world, 'octo'))).code).toBe(status.FAILED_PRECONDITION);
    expect(await agent!.ask(world.cp.agent, 'octo')).toBeUndefined();
    expect(world.oidc.tokenRequests('refresh_token')).toBe(1);
    const actions = (await world.cp.auditOf(COLLECTION, 'octo')).map((e) => e.action);
    expect(actions.filter((a) => a === 'account.status')).toHaveLength(1);
  }, 30_000);

  it('a fault between the provider answer and the store write: a clear state, never half-refreshed', async () => {
    let faults = 1;
    const world = await setup({
      accessTokenTtlSeconds: 300,
      refresh: { sweepMs: 200 },
      refreshHooks: {
        afterTokenResponse: async () => {
          if (faults-- > 0) throw new Error('injected: the store write failed');
        },
      },
    });
    await world.connect('octo', 'gh');
    const [agent] = await attach(world, 1);
    const held = agent!.value('GH_TOKEN');
    const before = await world.account('octo');

    const answered = await refreshNow(world, 'octo');
    expect(world.oidc.tokenRequests('refresh_token')).toBe(1);
    // The answer is lost: the old token set stays whole, and the account says so.
    expect(answered.account!.status).toBe(AccountStatus.ACCOUNT_STATUS_REFRESH_FAILING);
    expect(answered.account!.lastError).toBe(
      'refresh answered but not stored; the next refresh tells whether the grant survived',
    );
    expect(answered.account!.accessTokenExpireTime).toEqual(before.accessTokenExpireTime);
    expect(agent!.value('GH_TOKEN')).toBe(held);

    // The retry presents the refresh token the provider already rotated; it revokes the grant.
    await waitFor(
      async () =>
        (await world.account('octo')).status === AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT,
      10_000,
      'needs_reconnect',
    );
    const after = await world.account('octo');
    expect(after.lastError).toBe(
      'invalid_grant (HTTP 400) after an earlier refresh was interrupted before its answer was ' +
        'stored; connect the account again',
    );
    expect(world.oidc.tokenRequests('refresh_token')).toBe(2);
  }, 30_000);

  it('a control plane stopped between the provider answer and the store write', async () => {
    const world = await setup({
      accessTokenTtlSeconds: 300,
      refresh: { sweepMs: 600_000, leaseMs: 1_000 },
    });
    await world.connect('octo', 'gh');
    // A second control plane on the same store stalls after the provider has answered (and
    // rotated the refresh token), as one that stopped there would: its lease is never released.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stalled = await startTestServer({
      dataDir: world.srv.dataDir,
      refresh: { sweepMs: 600_000, leaseMs: 1_000 },
      refreshHooks: {
        afterTokenResponse: async () => {
          await gate;
          throw new Error('the process stopped here');
        },
      },
    });
    const other = adminClients(stalled.address);
    try {
      // Its caller gets whatever it gets; what matters is what the store ends up holding.
      const pending = call(
        other.accounts.refreshConnectedAccount.bind(other.accounts),
        { collection: COLLECTION, name: 'octo' },
        world.srv.rootToken,
      ).catch(() => undefined);
      await waitFor(() => world.oidc.tokenRequests('refresh_token') === 1, 5_000, 'the answer');
      await new Promise((r) => setTimeout(r, 1_100));

      // The lease ran out; the next refresh finds it taken over and presents the spent token.
      const err = await failure(refreshNow(world, 'octo'));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      const account = await world.account('octo');
      expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT);
      expect(account.lastError).toBe(
        'invalid_grant (HTTP 400) after an earlier refresh was interrupted before its answer ' +
          'was stored; connect the account again',
      );
      // The stalled process, woken, cannot write over what the newer lease holder decided.
      release();
      await pending;
      expect((await world.account('octo')).status).toBe(
        AccountStatus.ACCOUNT_STATUS_NEEDS_RECONNECT,
      );
      expect(world.oidc.tokenRequests('refresh_token')).toBe(2);
    } finally {
      release();
      closeClients(other);
      await stalled.close();
    }
  }, 30_000);
});
