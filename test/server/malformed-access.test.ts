import { status } from '@grpc/grpc-js';
import {
  AuditServiceService as Audit,
  Role,
  AdminTokenServiceService as Tokens,
} from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceService as Collections } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService as Env } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceService as Accounts,
  OAuthClientServiceService as Clients,
  type OAuthClientInput,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { RunServiceService as Runs } from '../../proto/gen/runkeys/v1/runs.js';
import { describeMalformedTable, type MalformedCase, req } from '../helpers/malformed.js';
import type { DeepPartial } from '../helpers/rpc.js';
import { TOKEN_ENDPOINT } from '../helpers/seed.js';

const { INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION } =
  status;
const acme = { collection: 'acme' };
const BAD_TOKEN = 'the bearer token is not valid (unknown, revoked or expired)';
const FILE0 = 'client.injection.files[0]';

const base: DeepPartial<OAuthClientInput> = {
  tokenEndpoint: TOKEN_ENDPOINT,
  clientId: 'runkeys-test',
  injection: { env: [{ name: 'GH_TOKEN' }] },
};
const client = (over: DeepPartial<OAuthClientInput>) =>
  req(Clients.createOAuthClient, { ...acme, name: 'gitlab', client: { ...base, ...over } });
const file = (path: string, template: string, expiryUnit = '') =>
  client({ injection: { files: [{ path, template, expiryUnit }] } });
const account = (tokens: object, name = 'hubot', c = 'github') =>
  req(Accounts.createConnectedAccount, { ...acme, name, client: c, tokens });

const CASES: MalformedCase[] = [
  {
    what: 'an OAuth client that injects its token nowhere',
    call: client({ injection: {} }),
    code: INVALID_ARGUMENT,
    details: '"client.injection" must name at least one environment variable or credential file',
  },
  {
    what: 'a credential file template without {{access_token}}',
    call: file('~/.config/gh/hosts.json', '{"token": "fixed"}'),
    code: INVALID_ARGUMENT,
    details: `"${FILE0}.template" must contain {{access_token}}`,
  },
  {
    what: 'a credential file template with an unknown placeholder',
    call: file('creds.json', '{"a": "{{access_token}}", "b": "{{id_token}}"}'),
    code: INVALID_ARGUMENT,
    details:
      `"${FILE0}.template" must use only the placeholders {{access_token}}, {{expires_at}} ` +
      'and {{field:NAME}}',
  },
  {
    what: 'a credential file template that is not JSON',
    call: file('creds.json', '{"token": "{{access_token}}"'),
    code: INVALID_ARGUMENT,
    details: `"${FILE0}.template" must be valid JSON once its placeholders are filled`,
  },
  {
    what: 'a credential file template that would write the refresh token',
    call: file('creds.json', '{"a": "{{access_token}}", "r": "{{field:refresh_token}}"}'),
    code: INVALID_ARGUMENT,
    details:
      `"${FILE0}.template" must not contain {{field:refresh_token}}: runs never receive ` +
      'refresh tokens',
  },
  {
    what: 'an absolute credential file path',
    call: file('/etc/passwd', '{"t": "{{access_token}}"}'),
    code: INVALID_ARGUMENT,
    details:
      `"${FILE0}.path" must be "~/<path>" under the home directory or a relative path under ` +
      'the working directory, without "." or ".." segments; got "/etc/passwd"',
  },
  {
    what: 'a credential file path that climbs out of the home directory',
    call: file('~/../root/.netrc', '{"t": "{{access_token}}"}'),
    code: INVALID_ARGUMENT,
    details:
      `"${FILE0}.path" must be "~/<path>" under the home directory or a relative path under ` +
      'the working directory, without "." or ".." segments; got "~/../root/.netrc"',
  },
  {
    what: 'an unknown expiry unit',
    call: file('creds.json', '{"t": "{{access_token}}", "e": {{expires_at}}}', 'hours'),
    code: INVALID_ARGUMENT,
    details: `"${FILE0}.expiry_unit" must be one of seconds, milliseconds, rfc3339; got "hours"`,
  },
  {
    what: 'an environment injection of the refresh token',
    call: client({ injection: { env: [{ name: 'GH_REFRESH', field: 'refresh_token' }] } }),
    code: INVALID_ARGUMENT,
    details:
      '"client.injection.env[0].field" must not be refresh_token: runs never receive refresh tokens',
  },
  {
    what: 'an environment injection into LD_PRELOAD, with no override to offer',
    call: client({ injection: { env: [{ name: 'LD_PRELOAD' }] } }),
    code: INVALID_ARGUMENT,
    details:
      '"client.injection.env[0].name" must not name a variable that changes how the sandbox ' +
      'loads code or finds programs; got LD_PRELOAD',
  },
  {
    what: 'a token endpoint over plain http off localhost',
    call: client({ tokenEndpoint: 'http://auth.example/token' }),
    code: INVALID_ARGUMENT,
    details: '"client.token_endpoint" must use https (http only on localhost)',
  },
  {
    what: 'neither an issuer nor a token endpoint',
    call: client({ tokenEndpoint: '' }),
    code: INVALID_ARGUMENT,
    details: '"client.issuer" or "client.token_endpoint" is required',
  },
  {
    what: 'a client secret with auth method none',
    call: client({ clientSecret: 'shh', tokenEndpointAuthMethod: 'none' }),
    code: INVALID_ARGUMENT,
    details: '"client.client_secret" must be empty with token_endpoint_auth_method none',
  },
  {
    what: 'client_secret_post without a secret',
    call: client({ tokenEndpointAuthMethod: 'client_secret_post' }),
    code: INVALID_ARGUMENT,
    details: '"client.client_secret" is required with client_secret_post',
  },
  {
    what: 'a client secret with a NUL byte',
    call: client({ clientSecret: 'a\0b' }),
    code: INVALID_ARGUMENT,
    details: '"client.client_secret" must not contain NUL bytes',
  },
  {
    what: 'a scope with a double quote',
    call: client({ scopes: ['repo', 'read:"all"'] }),
    code: INVALID_ARGUMENT,
    details: '"client.scopes[1]" must be an RFC 6749 scope token; got "read:\\"all\\""',
  },
  {
    what: 'an OAuth client that uses a name already taken',
    call: req(Clients.createOAuthClient, { ...acme, name: 'github', client: base }),
    code: status.ALREADY_EXISTS,
    details: 'OAuth client "github" already exists in collection "acme"',
  },
  {
    what: 'deleting an OAuth client that accounts still use',
    call: req(Clients.deleteOAuthClient, { ...acme, name: 'github' }),
    code: FAILED_PRECONDITION,
    details: 'OAuth client "github" still has 1 connected account(s); delete them first',
  },
  {
    what: 'an account without tokens',
    call: req(Accounts.createConnectedAccount, { ...acme, name: 'hubot', client: 'github' }),
    code: INVALID_ARGUMENT,
    details: '"tokens" is required',
  },
  {
    what: 'an account without an access token',
    call: account({ refreshToken: 'ghr_x' }),
    code: INVALID_ARGUMENT,
    details: '"tokens.access_token" is required',
  },
  {
    what: 'an access token with whitespace',
    call: account({ accessToken: 'gho_a b' }),
    code: INVALID_ARGUMENT,
    details: '"tokens.access_token" must not contain whitespace or NUL bytes',
  },
  {
    what: 'a negative expires_in',
    call: account({ accessToken: 'gho_a', expiresIn: -1 }),
    code: INVALID_ARGUMENT,
    details: '"tokens.expires_in" must be between 0 and 315360000 seconds; got -1',
  },
  {
    what: 'an extra token field named refresh_token',
    call: account({ accessToken: 'gho_a', extra: { refresh_token: 'ghr_sneaky' } }),
    code: INVALID_ARGUMENT,
    details:
      '"tokens.extra" keys must match ^[A-Za-z0-9_]{1,64}$ and be neither access_token nor ' +
      'refresh_token; got "refresh_token"',
  },
  {
    what: 'a granted scope with a NUL byte',
    call: account({ accessToken: 'gho_a', scope: 'repo gist\0' }),
    code: INVALID_ARGUMENT,
    details: '"tokens.scope[1]" must be an RFC 6749 scope token; got "gist\\u0000"',
  },
  {
    what: 'an account of an OAuth client that does not exist',
    call: account({ accessToken: 'gho_a' }, 'hubot', 'gitlab'),
    code: NOT_FOUND,
    details: 'OAuth client "gitlab" not found in collection "acme"',
  },
  {
    what: 'a token with an unspecified role',
    call: req(Tokens.createAdminToken, { ...acme, role: Role.ROLE_UNSPECIFIED }),
    code: INVALID_ARGUMENT,
    details:
      '"role" must be one of ROLE_ROOT, ROLE_ADMIN, ROLE_RUNNER, ROLE_VIEWER; got ROLE_UNSPECIFIED',
  },
  {
    what: 'a token with a negative lifetime',
    call: req(Tokens.createAdminToken, { ...acme, role: Role.ROLE_VIEWER, ttlSeconds: -5 }),
    code: INVALID_ARGUMENT,
    details: '"ttl_seconds" must be 0 (no expiry) or a positive number of seconds; got -5',
  },
  {
    what: 'a root token scoped to a collection',
    call: req(Tokens.createAdminToken, { ...acme, role: Role.ROLE_ROOT }),
    code: INVALID_ARGUMENT,
    details: '"collection" must be empty for a root token',
  },
  {
    what: 'deleting the last root token',
    call: req(Tokens.deleteAdminToken, (ctx) => ({ id: ctx.rootTokenId })),
    code: FAILED_PRECONDITION,
    details: 'cannot delete the last root token; create another root token first',
  },
  {
    what: 'an audit filter that is not an action',
    call: req(Audit.listAuditEvents, { ...acme, action: 'Env_Var' }),
    code: INVALID_ARGUMENT,
    details:
      '"action" must be an action such as env_var.update, or a prefix such as env_var.; ' +
      'got "Env_Var"',
  },
  {
    what: 'a change by a viewer token',
    call: req(Env.updateEnvVar, { ...acme, name: 'PLAIN_URL', value: 'x', allowMissing: true }),
    as: 'viewer',
    code: PERMISSION_DENIED,
    details: 'a viewer token cannot change collection "acme"',
  },
  {
    what: 'a read by a runner token',
    call: req(Env.listEnvVars, acme),
    as: 'runner',
    code: PERMISSION_DENIED,
    details: 'a runner token cannot read collection "acme"',
  },
  {
    what: 'a new collection by an admin token',
    call: req(Collections.createCollection, { name: 'fresh' }),
    as: 'admin',
    code: PERMISSION_DENIED,
    details: 'only a root token can create collections',
  },
  {
    what: 'a call without a bearer token',
    call: req(Collections.listCollections, {}),
    as: 'none',
    code: UNAUTHENTICATED,
    details: 'missing bearer token: set RUNKEYS_TOKEN or send "authorization: Bearer <token>"',
  },
  {
    what: 'a bearer token that is not a runkeys token',
    call: req(Collections.listCollections, {}),
    as: { bearer: 'hunter2' },
    code: UNAUTHENTICATED,
    details: BAD_TOKEN,
  },
  {
    what: 'a well-formed bearer token that was never issued',
    call: req(Env.deleteEnvVar, { ...acme, name: 'PLAIN_URL' }),
    as: { bearer: `rkt_000000000000_${'A'.repeat(43)}` },
    code: UNAUTHENTICATED,
    details: BAD_TOKEN,
  },
  {
    what: 'a connect without a method',
    call: req(Accounts.startConnect, { ...acme, name: 'hubot', client: 'github' }),
    code: INVALID_ARGUMENT,
    details: '"method" must be CONNECT_METHOD_AUTHORIZATION_CODE or CONNECT_METHOD_DEVICE',
  },
  {
    what: 'a connect of a badly named account',
    call: req(Accounts.startConnect, { ...acme, name: 'Hubot!', client: 'github', method: 1 }),
    code: INVALID_ARGUMENT,
    details: '"name" must match ^[a-z0-9][a-z0-9-]{0,62}$; got "Hubot!"',
  },
  {
    what: 'a connect flow id of the wrong shape',
    call: req(Accounts.getConnectFlow, { ...acme, id: 'flow-1' }),
    code: INVALID_ARGUMENT,
    details: '"id" must be a connect flow id (cf_ and 20 hex digits); got "flow-1"',
  },
  {
    what: 'a connect flow that does not exist',
    call: req(Accounts.getConnectFlow, { ...acme, id: `cf_${'0'.repeat(20)}` }),
    code: NOT_FOUND,
    details: `connect flow cf_${'0'.repeat(20)} not found in collection "acme"`,
  },
  {
    what: 'refreshing an account that does not exist',
    call: req(Accounts.refreshConnectedAccount, { ...acme, name: 'nobody' }),
    code: NOT_FOUND,
    details: 'account "nobody" not found in collection "acme"',
  },
  {
    what: 'an OAuth client for an unknown provider',
    call: client({ provider: 'mistral' }),
    code: INVALID_ARGUMENT,
    details:
      '"client.provider" must be empty (a tool account) or one of anthropic, openai, bedrock, ' +
      'openrouter, gemini, vllm; got "mistral"',
  },
  {
    what: 'a runtime that authenticates in an unknown way',
    call: req(Runs.createRun, {
      ...acme,
      ttlSeconds: 0,
      labels: {},
      runtime: { provider: 'anthropic', auth: 'sso' },
    }),
    code: INVALID_ARGUMENT,
    details: '"runtime.auth" must be api_key or account; got "sso"',
  },
  {
    what: 'a runtime through an account that names none',
    call: req(Runs.createRun, {
      ...acme,
      ttlSeconds: 0,
      labels: {},
      runtime: { provider: 'anthropic', auth: 'account', account: '' },
    }),
    code: INVALID_ARGUMENT,
    details: '"runtime.account" is required',
  },
  {
    what: 'a runtime with a key that also names an account',
    call: req(Runs.createRun, {
      ttlSeconds: 0,
      labels: {},
      ...acme,
      runtime: { provider: 'anthropic', auth: 'api_key', account: 'octocat' },
    }),
    code: INVALID_ARGUMENT,
    details: '"runtime.account" must be empty unless "runtime.auth" is account',
  },
  {
    what: 'a runtime through a tool account',
    call: req(Runs.createRun, {
      ttlSeconds: 0,
      labels: {},
      ...acme,
      runtime: { provider: 'anthropic', auth: 'account', account: 'octocat' },
    }),
    code: FAILED_PRECONDITION,
    details:
      'account "octocat" is not a anthropic credential: its OAuth client "github" must be ' +
      'registered with --provider anthropic',
  },
];

describeMalformedTable('malformed requests to OAuth, accounts, tokens and audit', CASES);
