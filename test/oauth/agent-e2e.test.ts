import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_REDIRECT_URI, CLIENT_ID, CLIENT_SECRET, codeFlowTokens } from '../helpers/accounts.js';
import {
  type AgentProcess,
  makeSandbox,
  parseDotenv,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { type OidcServer, startOidcServer } from '../helpers/oidc.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { adminClients, call, closeClients } from '../helpers/server.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// A real provider, a real control plane process and the one-file agent: the account's token
// lands in the .env and in a credential file under the sandbox's home; a refresh rewrites both
// within a second; ending the run removes both.

let oidc: OidcServer;
let server: ServerProcess;
let cp: ControlPlane;
let admin: ReturnType<typeof adminClients>;
let sandbox: Sandbox;
let agent: AgentProcess;
let home: string;
let runId: string;

const credFile = () => join(home, '.config', 'tool', 'auth.json');
const dotenvNow = () => {
  const text = readIfExists(sandbox.envFile);
  return text === undefined ? undefined : parseDotenv(text).dotenv;
};

beforeAll(async () => {
  oidc = await startOidcServer({
    accessTokenTtlSeconds: 300,
    scopes: ['api'],
    clients: [
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [APP_REDIRECT_URI] },
    ],
  });
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  admin = adminClients(server.address);
  const t = server.rootToken;
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: 'sk-openai-e2e-0000001' });
  await call(
    admin.oauthClients.createOAuthClient.bind(admin.oauthClients),
    {
      collection: 'acme',
      name: 'tool',
      client: {
        issuer: oidc.issuer,
        authorizationEndpoint: '',
        tokenEndpoint: '',
        deviceAuthorizationEndpoint: '',
        revocationEndpoint: '',
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tokenEndpointAuthMethod: '',
        scopes: ['openid', 'api'],
        injection: {
          env: [{ name: 'TOOL_TOKEN', field: '' }],
          files: [
            {
              path: '~/.config/tool/auth.json',
              template: '{"access_token": {{access_token}}, "expires_at": {{expires_at}}}',
              expiryUnit: 'seconds',
            },
          ],
        },
        provider: '',
      },
    },
    t,
  );
  const tokens = await codeFlowTokens(oidc, APP_REDIRECT_URI);
  await call(
    admin.accounts.createConnectedAccount.bind(admin.accounts),
    {
      collection: 'acme',
      name: 'tool-account',
      client: 'tool',
      tokens: {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        expiresIn: tokens.expires_in,
        scope: '',
        extra: {},
      },
    },
    t,
  );
  sandbox = makeSandbox();
  home = join(sandbox.dir, 'home');
  mkdirSync(home);
  const run = await cp.createRun('acme', 'openai');
  agent = spawnAgent({
    cwd: sandbox.dir,
    env: { ...sandboxVariables(run, server.address), HOME: home },
  });
  await waitFor(() => dotenvNow()?.TOOL_TOKEN, 10_000, 'the first .env');
  await waitFor(() => readIfExists(credFile()), 5_000, 'the credential file');
  runId = run.run!.id;
}, 60_000);

afterAll(async () => {
  stopAgents();
  cp?.close();
  if (admin !== undefined) closeClients(admin);
  await server?.kill();
  await oidc?.close();
});

describe('a connected account in a sandbox', () => {
  it('the token is in the .env and in a 0600 credential file under HOME', () => {
    const token = dotenvNow()!.TOOL_TOKEN!;
    const file = JSON.parse(readIfExists(credFile())!) as Record<string, unknown>;
    expect(file.access_token).toBe(token);
    expect(typeof file.expires_at).toBe('number');
    expect(Math.abs((file.expires_at as number) - (Date.now() / 1000 + 300))).toBeLessThan(15);
    expect(statSync(credFile()).mode & 0o777).toBe(0o600);
  });

  it('a refresh rewrites the .env and the file within a second, one token request', async () => {
    const before = dotenvNow()!.TOOL_TOKEN!;
    oidc.resetCounts();
    const started = Date.now();
    await call(
      admin.accounts.refreshConnectedAccount.bind(admin.accounts),
      { collection: 'acme', name: 'tool-account' },
      server.rootToken,
    );
    await waitFor(() => dotenvNow()?.TOOL_TOKEN !== before, 1_000, 'the new token in the .env');
    const after = dotenvNow()!.TOOL_TOKEN!;
    await waitFor(
      () => (readIfExists(credFile()) ?? '').includes(after),
      1_000 - (Date.now() - started),
      'the new token in the credential file',
    );
    expect(oidc.tokenRequests('refresh_token')).toBe(1);
    expect(agent.stderr()).not.toContain(before);
    expect(agent.stderr()).not.toContain(after);
  });

  it('ending the run removes the .env and the credential file', async () => {
    await cp.endRun('acme', runId);
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    expect(readIfExists(sandbox.envFile)).toBeUndefined();
    expect(readIfExists(credFile())).toBeUndefined();
  });
});
