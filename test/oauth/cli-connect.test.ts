import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ID, CLIENT_SECRET } from '../helpers/accounts.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { type OidcServer, startOidcServer } from '../helpers/oidc.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/wait.js';

// `runkeys accounts connect --device` as an admin runs it: it prints the verification URI and
// user code, waits while the user approves at the provider, and exits 0 once connected.

let oidc: OidcServer;
let server: ServerProcess;
let env: Record<string, string>;

beforeAll(async () => {
  oidc = await startOidcServer({
    accessTokenTtlSeconds: 300,
    scopes: ['api'],
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET }],
  });
  server = await spawnServer();
  env = cliEnv(server.address, server.rootToken);
  expect((await runCli(['collections', 'create', 'acme'], { env })).code).toBe(0);
  const created = await runCli(
    [
      'oauth-clients',
      'create',
      'gh',
      '--collection',
      'acme',
      '--issuer',
      oidc.issuer,
      '--client-id',
      CLIENT_ID,
      '--client-secret-stdin',
      '--scope',
      'openid',
      '--scope',
      'api',
      '--inject-env',
      'GH_TOKEN',
    ],
    { env, stdin: CLIENT_SECRET },
  );
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
}, 30_000);

afterAll(async () => {
  await server?.kill();
  await oidc?.close();
});

describe('runkeys accounts connect --device', () => {
  it('prints the code, waits for the approval, and exits 0 connected', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'accounts', 'connect', 'gh', '--collection', 'acme', '--name', 'octo', '--device'],
      { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const code = await waitFor(() => /^code: (\S+)$/m.exec(stdout)?.[1], 10_000, 'the user code');
    expect(stdout.split('\n')[0]).toBe(`${oidc.issuer}/device`);
    await oidc.approveDevice(code);
    expect(await exited).toBe(0);
    expect(stderr).toContain('connected account octo');

    const got = await runCli(['accounts', 'get', 'octo', '--collection', 'acme', '--json'], {
      env,
    });
    expect(JSON.parse(got.stdout)).toMatchObject({
      name: 'octo',
      client: 'gh',
      status: 'connected',
      refreshTokenSet: true,
      lastError: '',
    });
    const refreshed = await runCli(
      ['accounts', 'refresh', 'octo', '--collection', 'acme', '--json'],
      { env },
    );
    expect(refreshed.code).toBe(0);
    expect(oidc.tokenRequests('refresh_token')).toBe(1);
  }, 30_000);

  it('an unknown client exits 15 and names it', async () => {
    const res = await runCli(['accounts', 'connect', 'nope', '--collection', 'acme', '--device'], {
      env,
    });
    expect(res.code).toBe(15);
    expect(res.stderr).toContain('OAuth client "nope" not found in collection "acme"');
  });

  it('a provider that cannot be reached exits 24, without blaming the control plane', async () => {
    const created = await runCli(
      [
        'oauth-clients',
        'create',
        'gone',
        '--collection',
        'acme',
        '--issuer',
        'http://127.0.0.1:1',
        '--client-id',
        CLIENT_ID,
        '--client-secret-stdin',
        '--inject-env',
        'GONE_TOKEN',
      ],
      { env, stdin: CLIENT_SECRET },
    );
    expect(created.code, created.stderr).toBe(0);
    const res = await runCli(['accounts', 'connect', 'gone', '--collection', 'acme', '--device'], {
      env,
    });
    expect([res.code, res.stderr]).toEqual([
      24,
      'runkeys: UNAVAILABLE: the authorization server of OAuth client "gone" could not be reached\n',
    ]);
  });
});
