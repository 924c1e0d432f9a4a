import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentExit,
  makeSandbox,
  messages,
  probe,
  readReport,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { makePki, type TestPki } from '../helpers/tls.js';

// The control plane off loopback speaks TLS, and may require client certificates (mutual TLS):
// admins and agents reach it with the CA that signed its certificate and, under mutual TLS,
// a certificate of their own; a client without them, or with another CA's, gets nothing.

const KEY = 'sk-ant-tls-0123456789abcdef';
const TOKEN = 'tok-tls-secret-4242';

let pki: TestPki;

beforeAll(async () => {
  pki = await makePki();
});

afterAll(() => stopAgents());

/** A server with TLS (and mutual TLS when asked), a collection with a key and a variable. */
async function tlsServer(
  mutual: boolean,
): Promise<{ server: ServerProcess; admin: Record<string, string> }> {
  const server = await spawnServer({
    args: [
      '--tls-cert',
      pki.server.cert,
      '--tls-key',
      pki.server.key,
      ...(mutual ? ['--tls-client-ca', pki.ca] : []),
    ],
  });
  const admin = cliEnv(server.address, server.rootToken, {
    RUNKEYS_CA_CERT: pki.ca,
    ...(mutual ? { RUNKEYS_CLIENT_CERT: pki.client.cert, RUNKEYS_CLIENT_KEY: pki.client.key } : {}),
  });
  const ok = async (args: string[], stdin?: string) => {
    const res = await runCli(args, { env: admin, stdin });
    expect(res.stderr.includes('error'), res.stderr).toBe(false);
    expect(res.code, res.stderr).toBe(0);
  };
  await ok(['collections', 'create', 'acme']);
  await ok(['providers', 'set', 'anthropic', '--collection', 'acme'], KEY);
  await ok(['env', 'set', 'API_TOKEN', '--collection', 'acme'], TOKEN);
  return { server, admin };
}

/** The NAME=value lines `runs create --env` prints, as an environment. */
async function newRun(admin: Record<string, string>): Promise<Record<string, string>> {
  const res = await runCli(
    ['runs', 'create', '--collection', 'acme', '--provider', 'anthropic', '--env'],
    { env: admin },
  );
  expect(res.code, res.stderr).toBe(0);
  return Object.fromEntries(
    res.stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

async function agentWith(
  run: Record<string, string>,
  tls: Record<string, string>,
): Promise<{ exit: AgentExit; stderr: string; env?: Record<string, string> }> {
  const sandbox = makeSandbox();
  const agent = spawnAgent({
    cwd: sandbox.dir,
    env: { ...run, ...tls },
    flags: ['--wait', '2'],
    command: probe(sandbox, 'exit:0'),
  });
  const exit = await agent.exited;
  return {
    exit,
    stderr: agent.stderr(),
    env: exit.code === 0 ? readReport(sandbox).env : undefined,
  };
}

describe('TLS', () => {
  let server: ServerProcess;
  let admin: Record<string, string>;
  beforeAll(async () => {
    ({ server, admin } = await tlsServer(false));
  }, 30_000);
  afterAll(() => server?.kill());

  it('an agent with the CA attaches and its command gets the values', async () => {
    const got = await agentWith(await newRun(admin), { RUNKEYS_CA_CERT: pki.ca });
    expect(got.exit.code, got.stderr).toBe(0);
    expect(got.env?.ANTHROPIC_API_KEY).toBe(KEY);
    expect(got.env?.API_TOKEN).toBe(TOKEN);
    // The agent's own settings, TLS paths included, stay out of the command's environment.
    expect(Object.keys(got.env ?? {}).filter((k) => k.startsWith('RUNKEYS_'))).toEqual([]);
  });

  it('an agent without TLS, or trusting another CA, never attaches (exit 69)', async () => {
    const cases: Record<string, string>[] = [{}, { RUNKEYS_CA_CERT: pki.otherCa }];
    for (const tls of cases) {
      const got = await agentWith(await newRun(admin), tls);
      expect(got.exit.code, got.stderr).toBe(69);
      expect(got.stderr).not.toContain(KEY);
      if (tls.RUNKEYS_CA_CERT !== undefined) {
        // With TLS configured, the last line points at it, and the retries say why.
        expect(messages(got.stderr).at(-1)).toContain('and TLS: RUNKEYS_CA_CERT must have signed');
        expect(got.stderr).toMatch(/"reason":"[^"]*certificate/);
      }
    }
  });

  it('an admin without the CA is refused', async () => {
    const res = await runCli(['collections', 'list'], {
      env: cliEnv(server.address, server.rootToken),
    });
    expect(res.code).toBe(24);
    expect(res.stderr).toContain('a server with TLS also needs --ca-cert');
  });
});

describe('mutual TLS (--tls-client-ca)', () => {
  let server: ServerProcess;
  let admin: Record<string, string>;
  beforeAll(async () => {
    ({ server, admin } = await tlsServer(true));
  }, 30_000);
  afterAll(() => server?.kill());

  it('an agent with a client certificate the CA signed attaches', async () => {
    const got = await agentWith(await newRun(admin), {
      RUNKEYS_CA_CERT: pki.ca,
      RUNKEYS_CLIENT_CERT: pki.client.cert,
      RUNKEYS_CLIENT_KEY: pki.client.key,
    });
    expect(got.exit.code, got.stderr).toBe(0);
    expect(got.env?.ANTHROPIC_API_KEY).toBe(KEY);
    expect(got.env?.API_TOKEN).toBe(TOKEN);
  });

  it('an agent with no client certificate, or another CA’s, never attaches (exit 69)', async () => {
    const cases: Record<string, string>[] = [
      { RUNKEYS_CA_CERT: pki.ca },
      {
        RUNKEYS_CA_CERT: pki.ca,
        RUNKEYS_CLIENT_CERT: pki.otherClient.cert,
        RUNKEYS_CLIENT_KEY: pki.otherClient.key,
      },
    ];
    for (const tls of cases) {
      const run = await newRun(admin);
      const got = await agentWith(run, tls);
      expect(got.exit.code, got.stderr).toBe(69);
      // The refused agent consumed nothing: the run's bootstrap secret still attaches.
      const again = await agentWith(run, {
        RUNKEYS_CA_CERT: pki.ca,
        RUNKEYS_CLIENT_CERT: pki.client.cert,
        RUNKEYS_CLIENT_KEY: pki.client.key,
      });
      expect(again.exit.code, again.stderr).toBe(0);
    }
  });

  it('an admin with a key that does not match its certificate gets a usage error (exit 2)', async () => {
    const res = await runCli(['collections', 'list'], {
      env: cliEnv(server.address, server.rootToken, {
        RUNKEYS_CA_CERT: pki.ca,
        RUNKEYS_CLIENT_CERT: pki.client.cert,
        RUNKEYS_CLIENT_KEY: pki.otherClient.key,
      }),
    });
    expect([res.code, res.stderr]).toEqual([
      2,
      'runkeys: --ca-cert, --client-cert and --client-key are not usable together: PEM files, ' +
        'and a key that matches the certificate (key values mismatch)\n',
    ]);
    const half = await runCli(['collections', 'list', '--client-cert', pki.client.cert], {
      env: cliEnv(server.address, server.rootToken, { RUNKEYS_CA_CERT: pki.ca }),
    });
    expect([half.code, half.stderr]).toEqual([
      2,
      'runkeys: --client-cert and --client-key go together\n',
    ]);
  });

  it('an admin without a client certificate is refused', async () => {
    const res = await runCli(['collections', 'list'], {
      env: cliEnv(server.address, server.rootToken, { RUNKEYS_CA_CERT: pki.ca }),
    });
    expect(res.code).toBe(24);
    expect(res.stderr).toMatch(/certificate required/);
    expect(res.stderr).toContain(
      "\nrunkeys: the TLS handshake failed: --ca-cert must have signed the server's certificate",
    );
    // grpc-js's IP-address server name is not worth a deprecation warning on every call.
    expect(res.stderr).not.toContain('DEP0123');
  });

  it('names a half-given or unreadable TLS flag and exits 64', async () => {
    const run = await newRun(admin);
    const cases: [Record<string, string>, string][] = [
      [
        { RUNKEYS_CA_CERT: pki.ca, RUNKEYS_CLIENT_CERT: pki.client.cert },
        'runkeys agent: --client-cert and --client-key go together',
      ],
      [
        { RUNKEYS_CLIENT_CERT: pki.client.cert, RUNKEYS_CLIENT_KEY: pki.client.key },
        'runkeys agent: --client-cert needs --ca-cert',
      ],
      [
        { RUNKEYS_CA_CERT: `${pki.dir}/missing.pem` },
        `runkeys agent: cannot read --ca-cert ${pki.dir}/missing.pem (ENOENT)`,
      ],
      [{ RUNKEYS_CA_CERT: pki.client.key }, 'runkeys agent: --ca-cert holds no PEM certificate'],
      [
        {
          RUNKEYS_CA_CERT: pki.ca,
          RUNKEYS_CLIENT_CERT: pki.client.cert,
          RUNKEYS_CLIENT_KEY: pki.otherClient.key,
        },
        'runkeys agent: --ca-cert, --client-cert and --client-key are not usable together: PEM ' +
          'files, and a key that matches the certificate (key values mismatch)',
      ],
    ];
    for (const [tls, message] of cases) {
      const got = await agentWith(run, tls);
      expect(got.exit.code, got.stderr).toBe(64);
      expect(messages(got.stderr)[0]).toContain(message);
    }
  });
});
