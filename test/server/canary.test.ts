import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditServiceService } from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceService,
  OAuthClientServiceService,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { ProviderKeyServiceService } from '../../proto/gen/runkeys/v1/provider_keys.js';
import { type Canary, canary, leaksIn } from '../helpers/canary.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { Rpc, type UnaryMethod } from '../helpers/rpc.js';
import { createCollection, type LayerValues, seedLayers } from '../helpers/seed.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { checkpoint, readDbFiles } from '../helpers/store.js';

/**
 * Every layer holds canaries; a broad scenario of reads, writes and failures runs through the
 * API and the CLI; then no canary, in any encoding, may appear in a log line, an error, a
 * response, CLI output or the database files. Plain variables are readable by design and hold
 * no canary.
 */
const C = {
  anthropic: canary('anthropic'),
  openai: canary('openai'),
  openrouter: canary('openrouter'),
  gemini: canary('gemini'),
  vllm: canary('vllm'),
  awsKeyId: canary('aws-key-id'),
  awsSecret: canary('aws-secret'),
  awsSession: canary('aws-session'),
  bedrockBearer: canary('bedrock-bearer'),
  simple: canary('env-simple'),
  multiline: canary('env-multiline', (t) => `${t}-line-1\n${t}-line-2\n\n${t}-line-3\n`),
  unicode: canary('env-unicode', (t) => `${t}-ünïcødé-鍵-🔑`),
  updated: canary('env-updated'),
  clientSecret: canary('oauth-client-secret'),
  clientSecret2: canary('oauth-client-secret-2'),
  access: canary('account-access'),
  refresh: canary('account-refresh'),
  anthropic2: canary('anthropic-2'),
  cliSecret: canary('cli-env'),
  cliKey: canary('cli-openrouter'),
  cliClientSecret: canary('cli-oauth-client-secret'),
  cliAccess: canary('cli-account-access'),
  cliRefresh: canary('cli-account-refresh'),
  refused: canary('refused'),
};

const values: LayerValues = {
  providers: {
    anthropic: { apiKey: C.anthropic.value },
    openai: { apiKey: C.openai.value, baseUrl: 'https://openai-proxy.example/v1' },
    openrouter: { apiKey: C.openrouter.value },
    gemini: { apiKey: C.gemini.value },
    vllm: { baseUrl: 'http://localhost:8000/v1', apiKey: C.vllm.value },
    bedrock: {
      region: 'eu-west-1',
      accessKeyId: C.awsKeyId.value,
      secretAccessKey: C.awsSecret.value,
      sessionToken: C.awsSession.value,
    },
  },
  env: {
    SIMPLE_SECRET: C.simple.value,
    MULTILINE_SECRET: C.multiline.value,
    UNICODE_SECRET: C.unicode.value,
    PLAIN_CONFIG: 'https://plain.example/config',
  },
  plain: ['PLAIN_CONFIG'],
  oauthClient: { name: 'github', secret: C.clientSecret.value },
  account: { name: 'octocat', accessToken: C.access.value, refreshToken: C.refresh.value },
};

let srv: TestServer;
let rpc: Rpc;
let canaries: Canary[];
const responses: string[] = [];
const errors: string[] = [];
const cliOutputs: { args: string; text: string; code: number }[] = [];

async function ok<Req, Res>(m: UnaryMethod<Req, Res>, req: object): Promise<Res> {
  const res = await rpc.call(m, req as never, srv.rootToken);
  responses.push(JSON.stringify(res));
  return res;
}

async function refused<Req, Res>(m: UnaryMethod<Req, Res>, req: object, token = srv.rootToken) {
  try {
    await rpc.call(m, req as never, token);
  } catch (err) {
    const e = err as { details: string; message: string };
    errors.push(e.details, e.message);
    return;
  }
  throw new Error(`${m.path} was expected to fail`);
}

/** Runs CLI commands a few at a time and keeps their output in the order given. */
async function cli(commands: [string[], string?][]): Promise<void> {
  for (let i = 0; i < commands.length; i += 4) {
    const batch = commands.slice(i, i + 4);
    const results = await Promise.all(
      batch.map(([args, stdin]) =>
        runCli(args, { env: cliEnv(srv.address, srv.rootToken), stdin }),
      ),
    );
    results.forEach((r, j) => {
      const args = batch[j]![0].join(' ');
      cliOutputs.push({ args, text: r.stdout + r.stderr, code: r.code });
    });
  }
}

async function scenario(): Promise<void> {
  const at = { collection: 'canary' };
  // Gets and lists of every layer.
  await ok(CollectionServiceService.getCollection, { name: 'canary' });
  await ok(CollectionServiceService.listCollections, {});
  for (const provider of Object.keys(values.providers)) {
    await ok(ProviderKeyServiceService.getProviderKey, { ...at, provider });
  }
  await ok(ProviderKeyServiceService.listProviderKeys, at);
  for (const name of Object.keys(values.env))
    await ok(EnvVarServiceService.getEnvVar, { ...at, name });
  await ok(EnvVarServiceService.listEnvVars, at);
  await ok(OAuthClientServiceService.getOAuthClient, { ...at, name: 'github' });
  await ok(OAuthClientServiceService.listOAuthClients, at);
  await ok(ConnectedAccountServiceService.getConnectedAccount, { ...at, name: 'octocat' });
  await ok(ConnectedAccountServiceService.listConnectedAccounts, at);
  // Updates and deletes.
  await ok(EnvVarServiceService.updateEnvVar, {
    ...at,
    name: 'SIMPLE_SECRET',
    value: C.updated.value,
  });
  await ok(ProviderKeyServiceService.updateProviderKey, {
    ...at,
    provider: 'anthropic',
    credential: { apiKey: C.anthropic2.value },
  });
  const github = await ok(OAuthClientServiceService.getOAuthClient, { ...at, name: 'github' });
  await ok(OAuthClientServiceService.updateOAuthClient, {
    ...at,
    name: 'github',
    client: { ...github.oauthClient, clientSecret: C.clientSecret2.value },
  });
  await ok(EnvVarServiceService.deleteEnvVar, { ...at, name: 'UNICODE_SECRET' });
  await ok(ProviderKeyServiceService.deleteProviderKey, { ...at, provider: 'gemini' });
  // Failed calls that carry canaries.
  const env = EnvVarServiceService;
  await refused(env.createEnvVar, { ...at, name: 'MULTILINE_SECRET', value: C.refused.value });
  await refused(env.createEnvVar, { ...at, name: 'NUL_SECRET', value: `${C.refused.value}\0` });
  await refused(env.createEnvVar, {
    ...at,
    name: 'X',
    value: `${C.refused.value}${'x'.repeat(65536)}`,
  });
  await refused(env.createEnvVar, { collection: 'absent', name: 'X', value: C.refused.value });
  await refused(env.createEnvVar, { ...at, name: 'LD_PRELOAD', value: C.refused.value });
  await refused(ProviderKeyServiceService.createProviderKey, {
    ...at,
    provider: 'openai',
    credential: { apiKey: `${C.refused.value} tail` },
  });
  await refused(ProviderKeyServiceService.updateProviderKey, {
    ...at,
    provider: 'bedrock',
    credential: {
      region: 'eu-west-1',
      bearerToken: C.refused.value,
      secretAccessKey: C.refused.value,
    },
  });
  await refused(ConnectedAccountServiceService.createConnectedAccount, {
    ...at,
    name: 'ghost',
    client: 'absent',
    tokens: { accessToken: C.refused.value, refreshToken: C.refused.value },
  });
  await refused(env.listEnvVars, at, C.refused.value);
  await refused(env.listEnvVars, at, `rkt_000000000000_${'Q'.repeat(43)}`);
  // The audit log.
  await ok(AuditServiceService.listAuditEvents, at);
  await ok(AuditServiceService.listAuditEvents, {});
}

async function cliScenario(): Promise<void> {
  const at = ['--collection', 'canary'];
  await cli([
    [['env', 'set', 'CLI_SECRET', ...at], C.cliSecret.value],
    [['providers', 'set', 'openrouter', ...at, '--json'], `${C.cliKey.value}\n`],
    [
      [
        'oauth-clients',
        'create',
        'gitlab',
        ...at,
        '--token-endpoint',
        'https://gitlab.example/oauth/token',
        '--client-id',
        'runkeys',
        '--client-secret-stdin',
        '--inject-env',
        'GITLAB_TOKEN',
        '--json',
      ],
      C.cliClientSecret.value,
    ],
    [
      ['accounts', 'import', 'tanuki', ...at, '--client', 'github', '--json'],
      JSON.stringify({
        access_token: C.cliAccess.value,
        refresh_token: C.cliRefresh.value,
        expires_in: 7200,
        token_type: 'bearer',
      }),
    ],
    [['env', 'set', 'bad name', ...at], C.refused.value],
    [['providers', 'set', 'anthropic', ...at, '--region', 'us-east-1'], C.refused.value],
  ]);
  const reads = [
    ['env', 'list', ...at, '--json'],
    ['env', 'list', ...at],
    ['env', 'get', 'MULTILINE_SECRET', ...at, '--json'],
    ['env', 'get', 'PLAIN_CONFIG', ...at],
    ['providers', 'list', ...at, '--json'],
    ['providers', 'get', 'bedrock', '--collection', 'canary-bearer', '--json'],
    ['oauth-clients', 'get', 'github', ...at, '--json'],
    ['accounts', 'list', ...at, '--json'],
    ['accounts', 'get', 'octocat', ...at],
    ['collections', 'list', '--json'],
    ['audit', ...at, '--json'],
    ['audit'],
  ];
  await cli(reads.map((args) => [args]));
}

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
  canaries = [
    ...Object.values(C),
    { label: 'root token', value: srv.rootToken },
    // rkt_<12 hex>_<43 base64url>: the secret part may itself hold underscores.
    { label: 'root token secret', value: srv.rootToken.slice('rkt_000000000000_'.length) },
  ];
  await createCollection(rpc, srv.rootToken, 'canary');
  await seedLayers(rpc, srv.rootToken, 'canary', values);
  await createCollection(rpc, srv.rootToken, 'canary-bearer');
  await rpc.call(
    ProviderKeyServiceService.createProviderKey,
    {
      collection: 'canary-bearer',
      provider: 'bedrock',
      credential: { region: 'us-west-2', bearerToken: C.bedrockBearer.value },
    },
    srv.rootToken,
  );
  await scenario();
  await cliScenario();
}, 60_000);

afterAll(async () => {
  rpc.close();
  await srv.close();
});

describe('canaries in every layer', () => {
  it('ran the scenario it claims: reads, refusals and CLI commands', () => {
    expect(responses.length).toBeGreaterThan(20);
    expect(errors.length).toBe(2 * 10);
    expect(cliOutputs.map((o) => o.code)).toEqual([0, 0, 0, 0, 13, 13, ...Array(12).fill(0)]);
    expect(cliOutputs.find((o) => o.args.startsWith('env get PLAIN_CONFIG'))?.text).toContain(
      'https://plain.example/config',
    );
  });

  it('finds a planted canary in any of its encodings', () => {
    const value = C.unicode.value;
    const planted = `log line ${Buffer.from(`xx${value}`).toString('base64')} end`;
    // Two bytes before the value: its second byte starts a base64 group.
    expect(leaksIn(planted, [C.unicode])).toContain('env-unicode (base64+1)');
    expect(leaksIn(Buffer.from(value).toString('hex'), [C.unicode])).toEqual(['env-unicode (hex)']);
    expect(leaksIn(`"${JSON.stringify(C.multiline.value)}"`, [C.multiline])).toContain(
      'env-multiline (json)',
    );
  });

  it('leaves no canary in any server log line', () => {
    expect(leaksIn(srv.logs.text(), canaries)).toEqual([]);
    expect(leaksIn(srv.stderr.text(), canaries)).toEqual([]);
    expect(srv.logs.text()).toContain('"msg":"listening"');
  });

  it('leaves no canary in any error message', () => {
    expect(leaksIn(errors.join('\n'), canaries)).toEqual([]);
  });

  it('leaves no canary in any API response', () => {
    expect(leaksIn(responses.join('\n'), canaries)).toEqual([]);
  });

  it('leaves no canary in the stdout or stderr of any CLI command', () => {
    const found = cliOutputs.flatMap((o) =>
      leaksIn(o.text, canaries).map((l) => `${o.args}: ${l}`),
    );
    expect(found).toEqual([]);
  });

  it('leaves no canary in runkeys.db, its WAL or its shared memory before a checkpoint', () => {
    const files = readDbFiles(srv.dataDir);
    expect(files.map((f) => f.file.split('/').pop())).toContain('runkeys.db-wal');
    const wal = files.find((f) => f.file.endsWith('-wal'))!;
    expect(wal.bytes.includes('SIMPLE_SECRET')).toBe(true);
    for (const f of files) expect([f.file, leaksIn(f.bytes, canaries)]).toEqual([f.file, []]);
  });

  it('leaves no canary in the database files after a checkpoint', () => {
    checkpoint(srv.dataDir);
    const files = readDbFiles(srv.dataDir);
    const db = files.find((f) => f.file.endsWith('runkeys.db'))!;
    expect(db.bytes.includes('MULTILINE_SECRET')).toBe(true);
    for (const f of files) expect([f.file, leaksIn(f.bytes, canaries)]).toEqual([f.file, []]);
  });
});
