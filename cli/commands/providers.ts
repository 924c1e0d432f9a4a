import type { Command } from 'commander';
import {
  type ProviderCredential,
  type ProviderKey,
  ProviderKeyServiceClient,
} from '../../proto/gen/runkeys/v1/provider_keys.js';
import { makeClient, unary } from '../client.js';
import { adminConnection, type CliIo, isoTime, printJson } from '../context.js';
import { UsageError } from '../errors.js';
import { readSecret, refuseValueArguments } from '../input.js';
import { addReadAndDelete } from '../resource.js';

const keyJson = (k: ProviderKey) => ({
  provider: k.provider,
  fieldsSet: k.fieldsSet,
  lastFour: k.lastFour,
  createTime: isoTime(k.createTime),
  updateTime: isoTime(k.updateTime),
  createdBy: k.createdBy,
  updatedBy: k.updatedBy,
});

const COLUMNS = ['PROVIDER', 'FIELDS', 'LAST FOUR', 'UPDATED', 'BY'];
const keyRow = (k: ProviderKey): string[] => [
  k.provider,
  k.fieldsSet.join(','),
  k.lastFour === '' ? '' : `...${k.lastFour}`,
  isoTime(k.updateTime),
  k.updatedBy,
];

interface SetOptions {
  collection: string;
  baseUrl?: string;
  region?: string;
  accessKeyId?: string;
  sessionTokenFile?: string;
  noKey?: boolean;
  credentialJson?: boolean;
  fromFile?: string;
  json?: boolean;
}

const CREDENTIAL_JSON_FIELDS: Record<string, keyof ProviderCredential> = {
  api_key: 'apiKey',
  base_url: 'baseUrl',
  region: 'region',
  access_key_id: 'accessKeyId',
  secret_access_key: 'secretAccessKey',
  session_token: 'sessionToken',
  bearer_token: 'bearerToken',
};

function parseCredentialJson(text: string): ProviderCredential {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message would quote the input, which holds a secret.
    throw new UsageError('--credential-json: stdin is not a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--credential-json: stdin is not a JSON object');
  }
  const out = emptyCredential();
  for (const [k, v] of Object.entries(parsed)) {
    const field = CREDENTIAL_JSON_FIELDS[k];
    if (field === undefined || typeof v !== 'string') {
      throw new UsageError(
        `--credential-json: "${k}" is not a credential field; known: ` +
          Object.keys(CREDENTIAL_JSON_FIELDS).join(', '),
      );
    }
    out[field] = v;
  }
  return out;
}

const emptyCredential = (): ProviderCredential => ({
  apiKey: '',
  baseUrl: '',
  region: '',
  accessKeyId: '',
  secretAccessKey: '',
  sessionToken: '',
  bearerToken: '',
});

/** Builds the credential from flags and the secret on stdin (or --from-file). */
async function credentialFrom(
  provider: string,
  opts: SetOptions,
  io: CliIo,
): Promise<ProviderCredential> {
  if (opts.credentialJson === true) {
    return parseCredentialJson(await readSecret(opts, io.stdin, 'credential'));
  }
  const cred = emptyCredential();
  cred.baseUrl = opts.baseUrl ?? '';
  cred.region = opts.region ?? '';
  if (opts.noKey === true) return cred;
  const secret = await readSecret(opts, io.stdin, 'key');
  if (provider !== 'bedrock') cred.apiKey = secret;
  else if (opts.accessKeyId !== undefined) {
    cred.accessKeyId = opts.accessKeyId;
    cred.secretAccessKey = secret;
    if (opts.sessionTokenFile !== undefined) {
      cred.sessionToken = await readSecret(
        { fromFile: opts.sessionTokenFile },
        io.stdin,
        'session token',
      );
    }
  } else cred.bearerToken = secret;
  return cred;
}

export function registerProviders(program: Command, io: CliIo): void {
  const cmd = program.command('providers').description("manage a collection's AI provider keys");
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(ProviderKeyServiceClient, conn) };
  };

  cmd
    .command('set <provider>')
    // Extra arguments are accepted only to be refused with a clear reason: they would be keys.
    .allowExcessArguments()
    .description(
      'create or replace a provider key (anthropic, openai, bedrock, openrouter, gemini, vllm); ' +
        'the key is read from stdin or --from-file',
    )
    .requiredOption('--collection <name>', 'collection')
    .option('--base-url <url>', 'API base URL (required for vllm)')
    .option('--region <region>', 'AWS region (bedrock)')
    .option('--access-key-id <id>', 'bedrock: stdin is then the secret access key')
    .option('--session-token-file <path>', 'bedrock: session token for the access key pair')
    .option('--no-key', 'vllm: no API key')
    .option('--credential-json', 'stdin is a JSON object of credential fields')
    .option('--from-file <path>', 'read the key from this file instead of stdin')
    .option('--json', 'print JSON')
    .action(async (provider: string, raw: SetOptions & { key?: boolean }, c: Command) => {
      refuseValueArguments(c.args.slice(1), 'key');
      const opts: SetOptions = { ...raw, noKey: raw.key === false };
      const credential = await credentialFrom(provider, opts, io);
      const { conn, api } = client(c);
      const res = await unary(conn, api.updateProviderKey.bind(api), {
        collection: opts.collection,
        provider,
        credential,
        allowMissing: true,
      });
      const k = res.providerKey!;
      if (opts.json === true) printJson(io, keyJson(k));
      else io.stderr.write(`${res.created ? 'created' : 'replaced'} ${k.provider} key\n`);
    });

  addReadAndDelete(cmd, io, {
    key: 'provider',
    noun: 'key of',
    columns: COLUMNS,
    row: keyRow,
    json: keyJson,
    async get(c, collection, provider) {
      const { conn, api } = client(c);
      const res = await unary(conn, api.getProviderKey.bind(api), { collection, provider });
      return res.providerKey!;
    },
    async list(c, collection, pageToken) {
      const { conn, api } = client(c);
      const req = { collection, pageSize: 0, pageToken };
      const res = await unary(conn, api.listProviderKeys.bind(api), req);
      return { items: res.providerKeys, next: res.nextPageToken };
    },
    async remove(c, collection, provider) {
      const { conn, api } = client(c);
      await unary(conn, api.deleteProviderKey.bind(api), { collection, provider });
    },
  });
}
