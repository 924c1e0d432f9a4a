import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountStatus } from '../../proto/gen/runkeys/v1/oauth.js';
import { APP_REDIRECT_URI, CLIENT_ID, CLIENT_SECRET, codeFlowTokens } from '../helpers/accounts.js';
import { type OidcServer, startOidcServer } from '../helpers/oidc.js';
import { adminClients, call, closeClients } from '../helpers/server.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/wait.js';

// Two control-plane processes on one data dir refresh the same account: the lease row makes it
// one token request, whether both sweeps find it due or an admin asks both at once.

const TTL_S = 6;

let oidc: OidcServer;
let a: ServerProcess;
let b: ServerProcess;
let clientsA: ReturnType<typeof adminClients>;
let clientsB: ReturnType<typeof adminClients>;

beforeAll(async () => {
  oidc = await startOidcServer({
    accessTokenTtlSeconds: TTL_S,
    scopes: ['api'],
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [APP_REDIRECT_URI],
      },
    ],
  });
  // Refresh 2 s before expiry (a 6 s token: at 4 s), so both sweeps find it due together.
  const args = ['--refresh-min-margin', '2'];
  a = await spawnServer({ args });
  b = await spawnServer({ dataDir: a.dataDir, rootToken: a.rootToken, args });
  clientsA = adminClients(a.address);
  clientsB = adminClients(b.address);
  const t = a.rootToken;
  await call(
    clientsA.collections.createCollection.bind(clientsA.collections),
    { name: 'acme', description: '', maxOfflineSeconds: 0 },
    t,
  );
  await call(
    clientsA.oauthClients.createOAuthClient.bind(clientsA.oauthClients),
    {
      collection: 'acme',
      name: 'gh',
      client: {
        issuer: oidc.issuer,
        authorizationEndpoint: '',
        tokenEndpoint: '',
        deviceAuthorizationEndpoint: '',
        revocationEndpoint: '',
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tokenEndpointAuthMethod: 'client_secret_basic',
        scopes: ['openid', 'api'],
        injection: { env: [{ name: 'GH_TOKEN', field: '' }], files: [] },
        provider: '',
      },
    },
    t,
  );
}, 60_000);

afterAll(async () => {
  closeClients(clientsA);
  closeClients(clientsB);
  await Promise.all([a?.kill(), b?.kill()]);
  await oidc?.close();
});

async function importAccount(name: string) {
  const tokens = await codeFlowTokens(oidc, APP_REDIRECT_URI);
  await call(
    clientsA.accounts.createConnectedAccount.bind(clientsA.accounts),
    {
      collection: 'acme',
      name,
      client: 'gh',
      tokens: {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        expiresIn: tokens.expires_in,
        scope: '',
        extra: {},
      },
    },
    a.rootToken,
  );
}

const refreshVia = (c: ReturnType<typeof adminClients>, name: string) =>
  call(
    c.accounts.refreshConnectedAccount.bind(c.accounts),
    { collection: 'acme', name },
    a.rootToken,
  );

describe('two control planes on one data dir', () => {
  it('an admin refresh sent to both at once makes one token request', async () => {
    await importAccount('forced');
    for (let round = 0; round < 3; round++) {
      oidc.resetCounts();
      const [ra, rb] = await Promise.all([
        refreshVia(clientsA, 'forced'),
        refreshVia(clientsB, 'forced'),
      ]);
      expect(oidc.tokenRequests('refresh_token')).toBe(1);
      expect(ra.account!.status).toBe(AccountStatus.ACCOUNT_STATUS_CONNECTED);
      expect(rb.account!.accessTokenExpireTime).toEqual(ra.account!.accessTokenExpireTime);
    }
    // Out of the way of the sweep test below, which counts every refresh the provider sees.
    await call(
      clientsA.accounts.deleteConnectedAccount.bind(clientsA.accounts),
      { collection: 'acme', name: 'forced' },
      a.rootToken,
    );
  }, 30_000);

  it('both sweeps finding the account due make one token request per expiry', async () => {
    await importAccount('swept');
    oidc.resetCounts();
    const get = () =>
      call(
        clientsB.accounts.getConnectedAccount.bind(clientsB.accounts),
        { collection: 'acme', name: 'swept' },
        a.rootToken,
      );
    const first = (await get()).account!.accessTokenExpireTime!.getTime();
    await waitFor(
      async () => (await get()).account!.accessTokenExpireTime!.getTime() > first,
      TTL_S * 1000,
      'the sweep to refresh',
    );
    // Past the old expiry, and short of the next refresh point.
    await waitFor(() => Date.now() > first + 500, TTL_S * 1000, 'the old expiry');
    expect(oidc.tokenRequests('refresh_token')).toBe(1);
    expect(oidc.tokenRequestLog().every((r) => r.status === 200)).toBe(true);
    for (const p of [a, b]) expect(p.log()).not.toContain('"level":50');
  }, 30_000);
});
