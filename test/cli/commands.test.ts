import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import { ProviderKeyServiceService } from '../../proto/gen/runkeys/v1/provider_keys.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { Rpc } from '../helpers/rpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let srv: TestServer;
let rpc: Rpc;
const rk = (args: string[], stdin?: string) =>
  runCli(args, { env: cliEnv(srv.address, srv.rootToken), stdin });
const shop = ['--collection', 'shop'];

async function envVar(name: string) {
  const res = await rpc.call(
    EnvVarServiceService.getEnvVar,
    { collection: 'shop', name },
    srv.rootToken,
  );
  return res.envVar!;
}

async function fieldsOf(provider: string) {
  const res = await rpc.call(
    ProviderKeyServiceService.getProviderKey,
    { collection: 'shop', provider },
    srv.rootToken,
  );
  return [res.providerKey!.fieldsSet, res.providerKey!.lastFour];
}

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
});

afterAll(async () => {
  rpc.close();
  await srv.close();
});

describe('runkeys collections create NAME', () => {
  it('creates the collection and prints it as a table', async () => {
    const res = await rk(['collections', 'create', 'shop']);
    expect([res.code, res.stderr]).toEqual([0, '']);
    const [head, row] = res.stdout.split('\n');
    expect(head).toBe('NAME  DESCRIPTION  MAX OFFLINE  CREATED');
    expect(row).toMatch(/^shop {2}- {12}- {12}\d{4}-\d\d-\d\dT/);
  });
});

describe('runkeys collections create|update NAME --max-offline DURATION', () => {
  const json = (res: { stdout: string }) => JSON.parse(res.stdout) as Record<string, unknown>;

  it('creates a collection with a max offline, which get and list show', async () => {
    const res = await rk(['collections', 'create', 'offline', '--max-offline', '15m']);
    expect([res.code, res.stderr]).toEqual([0, '']);
    expect(res.stdout.split('\n')[1]).toMatch(/^offline {2}- {12}15m {10}\d{4}-/);

    const got = await rk(['collections', 'get', 'offline', '--json']);
    expect(json(got)).toMatchObject({ name: 'offline', maxOfflineSeconds: 900 });
    const list = JSON.parse((await rk(['collections', 'list', '--json'])).stdout) as unknown[];
    expect(list).toContainEqual(expect.objectContaining({ name: 'shop', maxOfflineSeconds: 0 }));
  });

  it('changes the max offline alone, and 0 resets it', async () => {
    await rk(['collections', 'update', 'offline', '--description', 'kept']);
    const res = await rk(['collections', 'update', 'offline', '--max-offline', '2h', '--json']);
    expect(json(res)).toMatchObject({ description: 'kept', maxOfflineSeconds: 7200 });

    const reset = await rk(['collections', 'update', 'offline', '--max-offline', '0', '--json']);
    expect(json(reset)).toMatchObject({ description: 'kept', maxOfflineSeconds: 0 });
  });

  it('refuses an update without a field to change, with exit code 2', async () => {
    const res = await rk(['collections', 'update', 'offline']);
    expect([res.code, res.stderr]).toEqual([
      2,
      'runkeys: collections update needs --description or --max-offline\n',
    ]);
  });

  it('refuses a duration it cannot read, with exit code 2', async () => {
    const res = await rk(['collections', 'update', 'offline', '--max-offline', '1d']);
    expect([res.code, res.stderr]).toEqual([
      2,
      'runkeys: --max-offline must be a duration such as 90s, 15m, 1h or 3600, ' +
        "or 0 for the agent's own; got 1d\n",
    ]);
  });

  it('passes on the control plane refusing a limit under a minute', async () => {
    const res = await rk(['collections', 'create', 'brief', '--max-offline', '30s']);
    expect([res.code, res.stderr]).toEqual([
      13,
      'runkeys: INVALID_ARGUMENT: "max_offline_seconds" must be 0 (the agent\'s own ' +
        '--max-offline) or between 60 and 604800 (a week); got 30\n',
    ]);
  });
});

describe('printf %s VALUE | runkeys env set NAME --collection NAME', () => {
  it('stores a sensitive value from stdin and prints only its fingerprint', async () => {
    const res = await rk(['env', 'set', 'API_TOKEN', ...shop], 'tok-1234567890');
    const v = await envVar('API_TOKEN');
    expect(res).toEqual({ code: 0, stdout: '', stderr: `created API_TOKEN (${v.fingerprint})\n` });
    expect([v.sensitive, v.value, v.valueBytes]).toEqual([true, '', 14]);
  });

  it('says "updated" when the variable existed', async () => {
    const res = await rk(['env', 'set', 'API_TOKEN', ...shop], 'tok-0987654321');
    expect(res.stderr).toBe(`updated API_TOKEN (${(await envVar('API_TOKEN')).fingerprint})\n`);
  });

  it('stores a readable plain value with --plain', async () => {
    const res = await rk(['env', 'set', 'REGION', ...shop, '--plain'], 'eu-north');
    expect(res.code).toBe(0);
    expect([(await envVar('REGION')).sensitive, (await envVar('REGION')).value]).toEqual([
      false,
      'eu-north',
    ]);
  });

  it('drops exactly one trailing newline, as echo adds', async () => {
    await rk(['env', 'set', 'ECHOED', ...shop, '--plain'], 'line\n\n');
    expect((await envVar('ECHOED')).value).toBe('line\n');
  });

  it('drops a trailing CRLF as one newline', async () => {
    await rk(['env', 'set', 'CRLF', ...shop, '--plain'], 'line\r\n');
    expect((await envVar('CRLF')).value).toBe('line');
  });

  it('keeps the trailing newline with --keep-trailing-newline', async () => {
    await rk(['env', 'set', 'KEPT', ...shop, '--plain', '--keep-trailing-newline'], 'pem\n');
    expect((await envVar('KEPT')).value).toBe('pem\n');
  });

  it('reads the value from --from-file instead of stdin', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'runkeys-cli-')), 'value');
    writeFileSync(file, 'from-a-file\n');
    const res = await rk(['env', 'set', 'FILED', ...shop, '--plain', '--from-file', file]);
    expect(res.code).toBe(0);
    expect((await envVar('FILED')).value).toBe('from-a-file');
  });
});

describe('runkeys env list --collection NAME --json', () => {
  it('prints plain values and leaves sensitive values out', async () => {
    const res = await rk(['env', 'list', ...shop, '--json']);
    expect(res.code).toBe(0);
    const list = JSON.parse(res.stdout) as Record<string, unknown>[];
    const byName = Object.fromEntries(list.map((v) => [v.name, v]));
    expect(Object.keys(byName)).toEqual(['API_TOKEN', 'CRLF', 'ECHOED', 'FILED', 'KEPT', 'REGION']);
    expect(byName.REGION).toMatchObject({ sensitive: false, value: 'eu-north', valueBytes: 8 });
    expect(byName.API_TOKEN).toMatchObject({ sensitive: true, valueBytes: 14 });
    expect(byName.API_TOKEN).not.toHaveProperty('value');
  });
});

describe('printf %s KEY | runkeys providers set PROVIDER --collection NAME', () => {
  it('stores an api_key and a --base-url', async () => {
    const res = await rk(
      ['providers', 'set', 'anthropic', ...shop, '--base-url', 'https://llm-proxy.example'],
      'sk-ant-api03-abcdefghWXYZ',
    );
    expect([res.code, res.stdout, res.stderr]).toEqual([0, '', 'created anthropic key\n']);
    expect(await fieldsOf('anthropic')).toEqual([['api_key', 'base_url'], 'WXYZ']);
  });

  it('stores a bedrock bearer token with --region', async () => {
    const res = await rk(
      ['providers', 'set', 'bedrock', ...shop, '--region', 'us-east-1'],
      'bedrock-api-key-0123456789',
    );
    expect(res.code).toBe(0);
    expect(await fieldsOf('bedrock')).toEqual([['region', 'bearer_token'], '6789']);
  });

  it('replaces it with an access key pair given --access-key-id', async () => {
    const res = await rk(
      [
        'providers',
        'set',
        'bedrock',
        ...shop,
        '--region',
        'us-east-1',
        '--access-key-id',
        'AKIAEXAMPLE',
      ],
      'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    );
    expect([res.code, res.stderr]).toEqual([0, 'replaced bedrock key\n']);
    expect(await fieldsOf('bedrock')).toEqual([
      ['region', 'access_key_id', 'secret_access_key'],
      'EKEY',
    ]);
  });

  it('stores a vllm base URL alone with --no-key', async () => {
    const res = await rk([
      'providers',
      'set',
      'vllm',
      ...shop,
      '--base-url',
      'http://localhost:8000/v1',
      '--no-key',
    ]);
    expect(res.code).toBe(0);
    expect(await fieldsOf('vllm')).toEqual([['base_url'], '']);
  });
});
