import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountStatus, ConnectState } from '../../proto/gen/runkeys/v1/oauth.js';
import { COLLECTION, flowSettled, type OAuthWorld, oauthWorld } from '../helpers/accounts.js';
import { failure } from '../helpers/server.js';

describe('connecting an account against a real authorization server', () => {
  let w: OAuthWorld;

  beforeAll(async () => {
    w = await oauthWorld();
    await w.registerClient('idp');
  });
  afterAll(() => w.close());

  it('authorization code + PKCE through the provider login and consent pages', async () => {
    const flow = await w.startConnect('octo', 'idp');
    const url = new URL(flow.authorizationUrl);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).not.toBeNull();
    expect(url.searchParams.get('redirect_uri')).toBe(w.srv.server.http!.redirectUri);

    const res = await w.oidc.authorize(flow.authorizationUrl, { followCallback: true });
    expect(res.status).toBe(200);
    expect(res.body).toContain('Account &#34;octo&#34; is connected');
    expect(new URL(res.callbackUrl).searchParams.get('iss')).toBe(w.oidc.issuer);
    expect(w.oidc.tokenRequests('authorization_code')).toBe(1);

    expect((await w.flow(flow.id)).state).toBe(ConnectState.CONNECT_STATE_CONNECTED);
    const account = await w.account('octo');
    expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    expect(account.refreshTokenSet).toBe(true);
    const lifetime = account.accessTokenExpireTime!.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(290_000);
    expect(lifetime).toBeLessThanOrEqual(300_000);
    expect((await w.cp.auditOf(COLLECTION, 'octo')).map((e) => e.action)).toEqual([
      'connect.start',
      'account.connect',
    ]);
  });

  it('the callback is single use: replaying it is refused and changes nothing', async () => {
    const flow = await w.startConnect('replayed', 'idp');
    const res = await w.oidc.authorize(flow.authorizationUrl, { followCallback: true });
    expect(res.status).toBe(200);
    const again = await fetch(res.callbackUrl);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('unknown or already finished');
    expect(w.oidc.tokenRequests('authorization_code')).toBe(2);
  });

  it('refuses an authorization response from another issuer (RFC 9207)', async () => {
    const flow = await w.startConnect('mixup', 'idp');
    const res = await w.oidc.authorize(flow.authorizationUrl);
    const forged = new URL(res.callbackUrl);
    forged.searchParams.set('iss', 'https://attacker.example');
    const answer = await fetch(forged);
    expect(answer.status).toBe(400);
    const settled = await w.flow(flow.id);
    expect(settled.state).toBe(ConnectState.CONNECT_STATE_FAILED);
    expect(settled.error).toContain('"iss"');
    expect((await failure(w.account('mixup'))).code).toBe(status.NOT_FOUND);
  });

  it('refuses a callback whose state matches no flow', async () => {
    const flow = await w.startConnect('wrong-state', 'idp');
    const res = await w.oidc.authorize(flow.authorizationUrl);
    const forged = new URL(res.callbackUrl);
    forged.searchParams.set('state', 'not-the-state');
    expect((await fetch(forged)).status).toBe(400);
    expect((await w.flow(flow.id)).state).toBe(ConnectState.CONNECT_STATE_PENDING);
  });

  it('an error answer (access denied) fails the flow with the provider error', async () => {
    const flow = await w.startConnect('denied', 'idp');
    const res = await w.oidc.authorize(flow.authorizationUrl);
    const cb = new URL(res.callbackUrl);
    const denied = new URL(cb.origin + cb.pathname);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('state', cb.searchParams.get('state')!);
    denied.searchParams.set('iss', w.oidc.issuer);
    expect((await fetch(denied)).status).toBe(400);
    const settled = await w.flow(flow.id);
    expect(settled.state).toBe(ConnectState.CONNECT_STATE_FAILED);
    expect(settled.error).toMatch(/^access_denied/);
  });

  it('device authorization grant: polls until the user approves', async () => {
    const flow = await w.startConnect('device-octo', 'idp', true);
    expect(flow.userCode).not.toBe('');
    expect(flow.verificationUri).toContain(w.oidc.issuer);
    expect(flow.interval).toBeGreaterThan(0);
    await w.oidc.approveDevice(flow.userCode);
    const settled = await flowSettled(w, flow.id, 20_000);
    expect(settled.state).toBe(ConnectState.CONNECT_STATE_CONNECTED);
    const account = await w.account('device-octo');
    expect(account.status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
    expect(account.refreshTokenSet).toBe(true);
  }, 30_000);

  it('connecting an existing account again through another client is refused', async () => {
    await w.registerClient('other');
    const err = await failure(w.startConnect('octo', 'other'));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toBe(
      'account "octo" is connected through OAuth client "idp"; connect it through that client, ' +
        'or delete it first',
    );
  });

  it('names the missing pieces: unknown client, no method', async () => {
    const missing = await failure(w.startConnect('x', 'nope'));
    expect(missing).toEqual({
      code: status.NOT_FOUND,
      details: `OAuth client "nope" not found in collection "${COLLECTION}"`,
    });
  });
});
