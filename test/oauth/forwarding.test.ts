import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenInjection } from '../../proto/gen/runkeys/v1/oauth.js';
import { Layer } from '../../proto/gen/runkeys/v1/runs.js';
import { LightAgent } from '../helpers/accounts.js';
import { leaksIn } from '../helpers/canary.js';
import { controlPlane } from '../helpers/runs.js';
import {
  adminClients,
  call,
  closeClients,
  failure,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';
import { DB_FILES } from '../helpers/store.js';
import { waitFor } from '../helpers/wait.js';

// What a run receives of connected accounts: access tokens through the client's injection
// (environment and credential files), never a refresh token or client secret; provider
// accounts only for the runtime that names them.

const ACCESS = 'gho_access-canary-7d2c41a9e0b3';
const REFRESH = 'ghr_refresh-canary-1f8e55c2d904';
const CLIENT_SECRET = 'client-secret-canary-0a9b8c7d';
const CLAUDE_ACCESS = 'sk-ant-oat01-claude-canary-33aa';

let srv: TestServer;
let cp: ReturnType<typeof controlPlane>;
let admin: ReturnType<typeof adminClients>;
const agents: LightAgent[] = [];

const client = (provider: string, injection: TokenInjection) => ({
  issuer: '',
  authorizationEndpoint: '',
  tokenEndpoint: 'https://idp.example/token',
  deviceAuthorizationEndpoint: '',
  revocationEndpoint: '',
  clientId: 'runkeys',
  clientSecret: CLIENT_SECRET,
  tokenEndpointAuthMethod: '',
  scopes: [],
  injection,
  provider,
});

beforeAll(async () => {
  srv = await startTestServer();
  cp = controlPlane(srv.address, srv.rootToken);
  admin = adminClients(srv.address);
  const t = srv.rootToken;
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: 'sk-openai-forwarding-0001' });
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-api-forwarding-0001' });
  const create = admin.oauthClients.createOAuthClient.bind(admin.oauthClients);
  await call(
    create,
    {
      collection: 'acme',
      name: 'github',
      client: client('', {
        env: [
          { name: 'GH_TOKEN', field: '' },
          { name: 'GH_ACCOUNT', field: 'account_id' },
        ],
        files: [
          {
            path: '~/.config/gh/creds.json',
            template:
              '{"token": {{access_token}}, "exp": {{expires_at}}, "who": "id {{field:account_id}}"}',
            expiryUnit: 'milliseconds',
          },
        ],
      }),
    },
    t,
  );
  await call(
    create,
    {
      collection: 'acme',
      name: 'claude',
      client: client('anthropic', {
        env: [{ name: 'CLAUDE_CODE_OAUTH_TOKEN', field: '' }],
        files: [],
      }),
    },
    t,
  );
  const importAccount = admin.accounts.createConnectedAccount.bind(admin.accounts);
  await call(
    importAccount,
    {
      collection: 'acme',
      name: 'octo',
      client: 'github',
      tokens: {
        accessToken: ACCESS,
        refreshToken: REFRESH,
        expiresIn: 3600,
        scope: 'repo',
        extra: { account_id: '4242' },
      },
    },
    t,
  );
  await call(
    importAccount,
    {
      collection: 'acme',
      name: 'max-plan',
      client: 'claude',
      tokens: { accessToken: CLAUDE_ACCESS, refreshToken: '', expiresIn: 0, scope: '', extra: {} },
    },
    t,
  );
});

afterAll(async () => {
  for (const a of agents) a.stop();
  cp.close();
  closeClients(admin);
  await srv.close();
});

async function runOf(provider: string, account = '') {
  const res = await call(
    cp.runs.createRun.bind(cp.runs),
    {
      collection: 'acme',
      runtime: { provider, auth: account === '' ? '' : 'account', account },
      ttlSeconds: 0,
      labels: {},
    },
    srv.rootToken,
  );
  const agent = new LightAgent(cp.agent, res);
  agents.push(agent);
  await waitFor(() => agent.latest(), 5_000, 'the first bundle');
  return agent;
}

describe('connected accounts in bundles', () => {
  it('a tool account reaches every run through its injection, with its expiry', async () => {
    const agent = await runOf('openai');
    const bundle = agent.latest()!;
    const gh = bundle.entries.find((e) => e.name === 'GH_TOKEN')!;
    expect(gh).toMatchObject({ value: ACCESS, layer: Layer.LAYER_ACCOUNT, sensitive: true });
    const expires = gh.expireTime!.getTime();
    expect(Math.abs(expires - (Date.now() + 3_600_000))).toBeLessThan(10_000);
    expect(bundle.entries.find((e) => e.name === 'GH_ACCOUNT')?.value).toBe('4242');
    expect(bundle.files).toHaveLength(1);
    const file = bundle.files[0]!;
    expect(file.path).toBe('~/.config/gh/creds.json');
    expect(file.account).toBe('octo');
    expect(JSON.parse(file.content)).toEqual({ token: ACCESS, exp: expires, who: 'id 4242' });
    expect(file.secrets.sort()).toEqual(['4242', ACCESS].sort());
    expect(bundle.accounts).toEqual([
      { name: 'octo', status: 'connected', expireTime: new Date(expires) },
    ]);
  });

  it('never carries a refresh token or a client secret', async () => {
    const agent = await runOf('openai');
    const text = JSON.stringify(agent.bundles);
    expect(text).not.toContain(REFRESH);
    expect(text).not.toContain(CLIENT_SECRET);
    expect(text).toContain(ACCESS);
  });

  it('a provider account goes only to the runtime that names it, instead of the key', async () => {
    const viaKey = await runOf('anthropic');
    expect(viaKey.value('CLAUDE_CODE_OAUTH_TOKEN')).toBeUndefined();
    expect(viaKey.value('ANTHROPIC_API_KEY')).toBe('sk-ant-api-forwarding-0001');
    expect(viaKey.latest()!.accounts.map((a) => a.name)).toEqual(['octo']);

    const viaAccount = await runOf('anthropic', 'max-plan');
    expect(viaAccount.value('CLAUDE_CODE_OAUTH_TOKEN')).toBe(CLAUDE_ACCESS);
    expect(viaAccount.value('ANTHROPIC_API_KEY')).toBeUndefined();
    expect(viaAccount.value('GH_TOKEN')).toBe(ACCESS);
    expect(
      viaAccount
        .latest()!
        .accounts.map((a) => a.name)
        .sort(),
    ).toEqual(['max-plan', 'octo']);
  });

  it('refuses a runtime account that is missing or not that provider credential', async () => {
    const create = (provider: string, account: string) =>
      failure(
        call(
          cp.runs.createRun.bind(cp.runs),
          {
            collection: 'acme',
            runtime: { provider, auth: 'account', account },
            ttlSeconds: 0,
            labels: {},
          },
          srv.rootToken,
        ),
      );
    expect(await create('anthropic', 'nobody')).toEqual({
      code: status.FAILED_PRECONDITION,
      details:
        'collection "acme" has no account "nobody"; connect one with: runkeys accounts connect ' +
        '--collection acme --name nobody CLIENT',
    });
    expect(await create('openai', 'max-plan')).toEqual({
      code: status.FAILED_PRECONDITION,
      details:
        'account "max-plan" is not a openai credential: its OAuth client "claude" must be ' +
        'registered with --provider openai',
    });
    expect(await create('anthropic', 'octo')).toEqual({
      code: status.FAILED_PRECONDITION,
      details:
        'account "octo" is not a anthropic credential: its OAuth client "github" must be ' +
        'registered with --provider anthropic',
    });
  });

  it('deleting the account removes its token from attached agents', async () => {
    const agent = await runOf('openai');
    expect(agent.value('GH_TOKEN')).toBe(ACCESS);
    await call(
      admin.accounts.deleteConnectedAccount.bind(admin.accounts),
      { collection: 'acme', name: 'octo' },
      srv.rootToken,
    );
    await waitFor(() => agent.value('GH_TOKEN') === undefined, 2_000, 'the token to go');
    expect(agent.latest()!.files).toEqual([]);
    expect(agent.latest()!.accounts).toEqual([]);
    const audit = await cp.auditOf('acme', 'octo');
    expect(audit.at(-1)!.action).toBe('account.delete');
    // No revocation endpoint registered: nothing to revoke at the provider.
    expect(audit.at(-1)!.details).toEqual({ revoked: 'unsupported' });
  });

  it('no token or client secret in the logs or the database files', () => {
    const canaries = [
      { label: 'access', value: ACCESS },
      { label: 'refresh', value: REFRESH },
      { label: 'client secret', value: CLIENT_SECRET },
      { label: 'provider account', value: CLAUDE_ACCESS },
    ];
    expect(leaksIn(srv.logs.text(), canaries)).toEqual([]);
    for (const f of DB_FILES) {
      const path = join(srv.dataDir, f);
      if (existsSync(path)) expect(leaksIn(readFileSync(path), canaries), f).toEqual([]);
    }
  });
});
