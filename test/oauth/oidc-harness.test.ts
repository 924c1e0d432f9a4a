import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_CODE_GRANT, type OidcServer, startOidcServer } from '../helpers/oidc.js';

const TTL = 5;
const CALLBACK = 'http://127.0.0.1:9/callback'; // never fetched
const insecure = { [oauth.allowInsecureRequests]: true };

const publicClient: oauth.Client = { client_id: 'cli', token_endpoint_auth_method: 'none' };
const basicClient: oauth.Client = { client_id: 'basic-app' };
const postClient: oauth.Client = { client_id: 'post-app' };
const deviceClient: oauth.Client = { client_id: 'device-cli', token_endpoint_auth_method: 'none' };

describe('oidc-provider harness', () => {
  let op: OidcServer;
  let as: oauth.AuthorizationServer;

  beforeAll(async () => {
    op = await startOidcServer({
      accessTokenTtlSeconds: TTL,
      scopes: ['api'],
      clients: [
        { client_id: 'cli', token_endpoint_auth_method: 'none', redirect_uris: [CALLBACK] },
        {
          client_id: 'basic-app',
          client_secret: 'basic-secret',
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [CALLBACK],
        },
        {
          client_id: 'post-app',
          client_secret: 'post-secret',
          token_endpoint_auth_method: 'client_secret_post',
          redirect_uris: [CALLBACK],
        },
        { client_id: 'device-cli', token_endpoint_auth_method: 'none' },
      ],
    });
    const issuer = new URL(op.issuer);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }),
    );
  });

  afterAll(async () => {
    await op?.close();
  });

  /** Authorization code + PKCE through the provider's own pages, then the code exchange. */
  async function codeFlow(client: oauth.Client, auth: oauth.ClientAuth, scope?: string) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: CALLBACK,
      response_type: 'code',
      ...(scope === undefined ? {} : { scope }),
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const { callbackUrl } = await op.authorize(url.href);
    const callback = new URL(callbackUrl);
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      CALLBACK,
      verifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res);
    return { callback, tokens };
  }

  async function refresh(client: oauth.Client, auth: oauth.ClientAuth, refreshToken: string) {
    const res = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, insecure);
    return oauth.processRefreshTokenResponse(as, client, res);
  }

  async function oauthError(promise: Promise<unknown>): Promise<string> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(oauth.ResponseBodyError);
    return (err as oauth.ResponseBodyError).error;
  }

  it('serves discovery for the loopback issuer', () => {
    expect(op.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(as.issuer).toBe(op.issuer);
    expect(as.token_endpoint).toBe(`${op.issuer}/token`);
    expect(as.device_authorization_endpoint).toBe(`${op.issuer}/device/auth`);
    expect(as.revocation_endpoint).toBe(`${op.issuer}/token/revocation`);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
  });

  it('runs the code flow with PKCE S256, iss in the callback, and issues a refresh token', async () => {
    op.resetCounts();
    const { callback, tokens } = await codeFlow(publicClient, oauth.None(), 'openid');
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get('iss')).toBe(op.issuer);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.expires_in).toBeGreaterThanOrEqual(TTL - 1);
    expect(tokens.expires_in).toBeLessThanOrEqual(TTL);
    expect(op.tokenRequests('authorization_code')).toBe(1);
    expect(op.tokenRequests()).toBe(1);
  });

  it('answers an authorization request without PKCE with an error redirect', async () => {
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: 'cli',
      redirect_uri: CALLBACK,
      response_type: 'code',
      state: 'xyz',
    }).toString();
    const callback = new URL((await op.authorize(url.href)).callbackUrl);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('iss')).toBe(op.issuer);
  });

  it('rotates refresh tokens; reusing the old one is invalid_grant and revokes the grant', async () => {
    const { tokens } = await codeFlow(publicClient, oauth.None(), 'openid');
    op.resetCounts();
    const first = tokens.refresh_token!;
    const rotated = await refresh(publicClient, oauth.None(), first);
    expect(rotated.refresh_token).toBeTruthy();
    expect(rotated.refresh_token).not.toBe(first);
    expect(rotated.access_token).not.toBe(tokens.access_token);
    expect(rotated.expires_in).toBeLessThanOrEqual(TTL);

    expect(await oauthError(refresh(publicClient, oauth.None(), first))).toBe('invalid_grant');
    // Reuse detection revoked the whole grant, so the rotated token is dead too.
    const reused = refresh(publicClient, oauth.None(), rotated.refresh_token!);
    expect(await oauthError(reused)).toBe('invalid_grant');
    expect(op.tokenRequests('refresh_token')).toBe(3);
    expect(op.tokenRequests('authorization_code')).toBe(0);
  });

  it('runs the device flow: pending until approved, then tokens with a refresh token', async () => {
    op.resetCounts();
    const started = await oauth.processDeviceAuthorizationResponse(
      as,
      deviceClient,
      await oauth.deviceAuthorizationRequest(
        as,
        deviceClient,
        oauth.None(),
        { scope: 'openid' },
        insecure,
      ),
    );
    expect(started.verification_uri).toBe(`${op.issuer}/device`);
    const poll = async () =>
      oauth.processDeviceCodeResponse(
        as,
        deviceClient,
        await oauth.deviceCodeGrantRequest(
          as,
          deviceClient,
          oauth.None(),
          started.device_code,
          insecure,
        ),
      );
    expect(await oauthError(poll())).toBe('authorization_pending');

    await op.approveDevice(started.user_code);
    const tokens = await poll();
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.expires_in).toBeLessThanOrEqual(TTL);
    expect(op.tokenRequests(DEVICE_CODE_GRANT)).toBe(2);

    const rotated = await refresh(deviceClient, oauth.None(), tokens.refresh_token!);
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    await expect(op.approveDevice('BCDF-GHJK')).rejects.toThrow(/device verification failed/);
  });

  it('goes down on stop() and comes back on the same port on start()', async () => {
    const { tokens } = await codeFlow(publicClient, oauth.None(), 'openid');
    op.resetCounts();
    await op.stop();
    const down = refresh(publicClient, oauth.None(), tokens.refresh_token!);
    await expect(down).rejects.toThrow(TypeError); // fetch failed: connection refused
    expect(op.tokenRequests()).toBe(0);

    await op.start();
    expect(as.token_endpoint).toBe(`${op.issuer}/token`);
    const rotated = await refresh(publicClient, oauth.None(), tokens.refresh_token!);
    expect(rotated.refresh_token).toBeTruthy();
    expect(op.tokenRequests('refresh_token')).toBe(1);
  });

  it('revokeAllGrants() makes refresh answer invalid_grant', async () => {
    const { tokens } = await codeFlow(publicClient, oauth.None(), 'openid');
    expect(await op.revokeAllGrants()).toBeGreaterThan(0);
    const revoked = refresh(publicClient, oauth.None(), tokens.refresh_token!);
    expect(await oauthError(revoked)).toBe('invalid_grant');
  });

  it('authenticates client_secret_basic and client_secret_post clients', async () => {
    op.resetCounts();
    const basic = await codeFlow(basicClient, oauth.ClientSecretBasic('basic-secret'), 'openid');
    expect(basic.tokens.refresh_token).toBeTruthy();
    const post = await codeFlow(postClient, oauth.ClientSecretPost('post-secret'), 'api');
    expect(post.tokens.refresh_token).toBeTruthy();
    expect(post.tokens.scope).toBe('api');
    expect(post.tokens.id_token).toBeUndefined();

    const rotated = await refresh(
      basicClient,
      oauth.ClientSecretBasic('basic-secret'),
      basic.tokens.refresh_token!,
    );
    expect(rotated.refresh_token).toBeTruthy();
    // A wrong secret is refused, and still counted.
    const wrongSecret = refresh(postClient, oauth.ClientSecretPost('nope'), 'x');
    expect(await oauthError(wrongSecret)).toBe('invalid_client');
    expect(op.tokenRequests('authorization_code')).toBe(2);
    expect(op.tokenRequests('refresh_token')).toBe(2);
    // The log pins down how each client authenticated (the provider accepts either method).
    expect(op.tokenRequestLog()).toEqual([
      {
        grantType: 'authorization_code',
        clientId: 'basic-app',
        authMethod: 'client_secret_basic',
        status: 200,
      },
      {
        grantType: 'authorization_code',
        clientId: 'post-app',
        authMethod: 'client_secret_post',
        status: 200,
      },
      {
        grantType: 'refresh_token',
        clientId: 'basic-app',
        authMethod: 'client_secret_basic',
        status: 200,
      },
      {
        grantType: 'refresh_token',
        clientId: 'post-app',
        authMethod: 'client_secret_post',
        status: 401,
      },
    ]);
  });

  it('registers clients at runtime and can follow the callback', async () => {
    const callbacks: string[] = [];
    const app: Server = createServer((req, res) => {
      callbacks.push(req.url ?? '');
      res.end('signed in');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const redirectUri = `http://127.0.0.1:${(app.address() as AddressInfo).port}/cb`;
      await op.addClient({ client_id: 'late', redirect_uris: [redirectUri] });
      await expect(op.addClient({ client_id: 'late' })).rejects.toThrow(/already exists/);
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({
        client_id: 'late',
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
        code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
        code_challenge_method: 'S256',
      }).toString();
      const result = await op.authorize(url.href, { followCallback: true });
      expect(result.status).toBe(200);
      expect(result.body).toBe('signed in');
      expect(callbacks).toHaveLength(1);
      expect(new URL(result.callbackUrl).searchParams.get('code')).toBeTruthy();
    } finally {
      app.closeAllConnections();
      await new Promise((resolve) => app.close(resolve));
    }
  });
});
