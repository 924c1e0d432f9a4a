import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type FileInjection,
  type OAuthClient,
  type OAuthClientInput,
  OAuthClientServiceClient,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { makeClient, unary } from '../client.js';
import {
  adminConnection,
  type CliIo,
  collect,
  isoTime,
  printJson,
  printTable,
} from '../context.js';
import { UsageError } from '../errors.js';
import { readSecret } from '../input.js';
import { addReadAndDelete } from '../resource.js';

interface ClientOptions {
  collection: string;
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  deviceEndpoint?: string;
  revocationEndpoint?: string;
  clientId: string;
  clientSecretStdin?: boolean;
  clientSecretFile?: string;
  clearClientSecret?: boolean;
  authMethod?: string;
  provider?: string;
  scope: string[];
  injectEnv: string[];
  injectFile: string[];
  json?: boolean;
}

const clientJson = (c: OAuthClient) => ({
  name: c.name,
  issuer: c.issuer,
  authorizationEndpoint: c.authorizationEndpoint,
  tokenEndpoint: c.tokenEndpoint,
  deviceAuthorizationEndpoint: c.deviceAuthorizationEndpoint,
  revocationEndpoint: c.revocationEndpoint,
  clientId: c.clientId,
  clientSecretSet: c.clientSecretSet,
  tokenEndpointAuthMethod: c.tokenEndpointAuthMethod,
  provider: c.provider,
  scopes: c.scopes,
  injection: c.injection,
  createTime: isoTime(c.createTime),
  updateTime: isoTime(c.updateTime),
});

const COLUMNS = ['NAME', 'ISSUER / TOKEN ENDPOINT', 'CLIENT ID', 'AUTH', 'SCOPES'];
const clientRow = (c: OAuthClient): string[] => [
  c.name,
  c.issuer === '' ? c.tokenEndpoint : c.issuer,
  c.clientId,
  c.tokenEndpointAuthMethod,
  c.scopes.join(' '),
];

/** `--inject-file PATH=TEMPLATE_FILE[:UNIT]`: the template is read from a local file. */
function fileInjection(spec: string): FileInjection {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UsageError('--inject-file must be PATH=TEMPLATE_FILE[:UNIT]');
  const path = spec.slice(0, eq);
  let source = spec.slice(eq + 1);
  let expiryUnit = '';
  const unit = /:(seconds|milliseconds|rfc3339)$/.exec(source);
  if (unit !== null) {
    expiryUnit = unit[1]!;
    source = source.slice(0, unit.index);
  }
  let template: string;
  try {
    template = readFileSync(source, 'utf8');
  } catch {
    throw new UsageError(`--inject-file: cannot read template file ${source}`);
  }
  return { path, template, expiryUnit };
}

async function clientInput(opts: ClientOptions, io: CliIo): Promise<OAuthClientInput> {
  let clientSecret = '';
  if (opts.clientSecretStdin === true || opts.clientSecretFile !== undefined) {
    clientSecret = await readSecret({ fromFile: opts.clientSecretFile }, io.stdin, 'client secret');
  }
  return {
    issuer: opts.issuer ?? '',
    authorizationEndpoint: opts.authorizationEndpoint ?? '',
    tokenEndpoint: opts.tokenEndpoint ?? '',
    deviceAuthorizationEndpoint: opts.deviceEndpoint ?? '',
    revocationEndpoint: opts.revocationEndpoint ?? '',
    clientId: opts.clientId,
    clientSecret,
    tokenEndpointAuthMethod: opts.authMethod ?? '',
    provider: opts.provider ?? '',
    scopes: opts.scope,
    injection: {
      env: opts.injectEnv.map((spec) => {
        const [name = '', field = ''] = spec.split('=', 2);
        return { name, field };
      }),
      files: opts.injectFile.map(fileInjection),
    },
  };
}

function clientFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--collection <name>', 'collection')
    .option('--issuer <url>', 'issuer URL, for discovery')
    .option('--authorization-endpoint <url>', 'explicit authorization endpoint')
    .option('--token-endpoint <url>', 'explicit token endpoint')
    .option('--device-endpoint <url>', 'explicit device authorization endpoint')
    .option('--revocation-endpoint <url>', 'explicit revocation endpoint')
    .requiredOption('--client-id <id>', 'client id')
    .option('--client-secret-stdin', 'read the client secret from stdin')
    .option('--client-secret-file <path>', 'read the client secret from a file')
    .option('--auth-method <method>', 'client_secret_basic, client_secret_post or none')
    .option(
      '--provider <provider>',
      "accounts are this AI provider's credentials: only runs naming them receive them",
    )
    .option('--scope <scope>', 'a scope to request (repeatable)', collect, [])
    .option(
      '--inject-env <NAME[=FIELD]>',
      'put the token (or FIELD) in NAME (repeatable)',
      collect,
      [],
    )
    .option(
      '--inject-file <PATH=TEMPLATE_FILE[:UNIT]>',
      'write a credential file from a JSON template (repeatable)',
      collect,
      [],
    )
    .option('--json', 'print JSON');
}

export function registerOAuthClients(program: Command, io: CliIo): void {
  const cmd = program.command('oauth-clients').description('manage OAuth client registrations');
  const client = (c: Command) => {
    const conn = adminConnection(c, io);
    return { conn, api: makeClient(OAuthClientServiceClient, conn) };
  };
  const show = (c: OAuthClient, json: boolean) => {
    if (json) printJson(io, clientJson(c));
    else printTable(io, COLUMNS, [clientRow(c)]);
  };

  clientFlags(cmd.command('create <name>').description('register an OAuth client')).action(
    async (name: string, opts: ClientOptions, c: Command) => {
      const input = await clientInput(opts, io);
      const { conn, api } = client(c);
      const res = await unary(conn, api.createOAuthClient.bind(api), {
        collection: opts.collection,
        name,
        client: input,
      });
      show(res.oauthClient!, opts.json === true);
    },
  );

  clientFlags(cmd.command('update <name>').description('replace a registration'))
    .option('--clear-client-secret', 'remove the stored client secret')
    .action(async (name: string, opts: ClientOptions, c: Command) => {
      const input = await clientInput(opts, io);
      const { conn, api } = client(c);
      const res = await unary(conn, api.updateOAuthClient.bind(api), {
        collection: opts.collection,
        name,
        client: input,
        clearClientSecret: opts.clearClientSecret === true,
      });
      show(res.oauthClient!, opts.json === true);
    });

  addReadAndDelete(cmd, io, {
    key: 'name',
    noun: 'OAuth client',
    columns: COLUMNS,
    row: clientRow,
    json: clientJson,
    async get(c, collection, name) {
      const { conn, api } = client(c);
      return (await unary(conn, api.getOAuthClient.bind(api), { collection, name })).oauthClient!;
    },
    async list(c, collection, pageToken) {
      const { conn, api } = client(c);
      const req = { collection, pageSize: 0, pageToken };
      const res = await unary(conn, api.listOAuthClients.bind(api), req);
      return { items: res.oauthClients, next: res.nextPageToken };
    },
    async remove(c, collection, name) {
      const { conn, api } = client(c);
      await unary(conn, api.deleteOAuthClient.bind(api), { collection, name });
    },
  });
}
