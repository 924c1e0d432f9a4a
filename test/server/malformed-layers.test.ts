import { status } from '@grpc/grpc-js';
import { CollectionServiceService as Collections } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService as Env } from '../../proto/gen/runkeys/v1/env_vars.js';
import { ProviderKeyServiceService as Providers } from '../../proto/gen/runkeys/v1/provider_keys.js';
import { describeMalformedTable, type MalformedCase, req } from '../helpers/malformed.js';

const { INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS } = status;
const acme = { collection: 'acme' };
const guarded = (name: string) =>
  '"name" must not name a variable that changes how the sandbox loads code or finds programs ' +
  `unless "allow_override" is set (--allow-override); got ${name}`;
const env = (name: string, value = 'v') => req(Env.createEnvVar, { ...acme, name, value });
const key = (provider: string, credential: object) =>
  req(Providers.createProviderKey, { ...acme, provider, credential });
const bedrock = (credential: object) => key('bedrock', { region: 'us-east-1', ...credential });
const PROVIDERS = 'anthropic, openai, bedrock, openrouter, gemini, vllm';
const BEDROCK_SHAPES = 'either access_key_id and secret_access_key, or bearer_token';
const maxOffline = (seconds: number) =>
  `"max_offline_seconds" must be 0 (the agent's own --max-offline) or between 60 and 604800 ` +
  `(a week); got ${seconds}`;
const BAD_PAGE_TOKEN =
  '"page_token" must be the next_page_token of this same list; start again without it';

const CASES: MalformedCase[] = [
  {
    what: 'a collection name with capitals and an underscore',
    call: req(Collections.createCollection, { name: 'Acme_Corp' }),
    code: INVALID_ARGUMENT,
    details: '"name" must match ^[a-z0-9][a-z0-9-]{0,62}$; got "Acme_Corp"',
  },
  {
    what: 'an empty collection name',
    call: req(Collections.createCollection, { name: '' }),
    code: INVALID_ARGUMENT,
    details: '"name" is required',
  },
  {
    what: 'a collection that already exists',
    call: req(Collections.createCollection, { name: 'acme' }),
    code: ALREADY_EXISTS,
    details: 'collection "acme" already exists',
  },
  {
    what: 'a description with a NUL byte',
    call: req(Collections.createCollection, { name: 'fresh', description: 'a\0b' }),
    code: INVALID_ARGUMENT,
    details: '"description" must not contain NUL bytes',
  },
  {
    what: 'a description over 1024 characters',
    call: req(Collections.updateCollection, { name: 'acme', description: 'd'.repeat(1025) }),
    code: INVALID_ARGUMENT,
    details: '"description" must be at most 1024 characters; got 1025',
  },
  ...[-1, 59, 604_801].map((seconds) => ({
    what: `a max offline of ${seconds} seconds`,
    call: req(Collections.createCollection, { name: 'fresh', maxOfflineSeconds: seconds }),
    code: INVALID_ARGUMENT,
    details: maxOffline(seconds),
  })),
  {
    what: 'an update to a max offline over a week',
    call: req(Collections.updateCollection, { name: 'acme', maxOfflineSeconds: 604_801 }),
    code: INVALID_ARGUMENT,
    details: maxOffline(604_801),
  },
  {
    what: 'an update that sets nothing',
    call: req(Collections.updateCollection, { name: 'acme' }),
    code: INVALID_ARGUMENT,
    details: 'set "description" or "max_offline_seconds"; the update changes nothing',
  },
  {
    what: 'a variable name that starts with a digit',
    call: env('9LIVES'),
    code: INVALID_ARGUMENT,
    details: '"name" must match ^[A-Za-z_][A-Za-z0-9_]*$; got "9LIVES"',
  },
  {
    what: 'a variable name with a dash',
    call: env('MY-VAR'),
    code: INVALID_ARGUMENT,
    details: '"name" must match ^[A-Za-z_][A-Za-z0-9_]*$; got "MY-VAR"',
  },
  {
    what: 'a variable name with a NUL byte',
    call: env('A\0B'),
    code: INVALID_ARGUMENT,
    details: '"name" must match ^[A-Za-z_][A-Za-z0-9_]*$; got "A\\u0000B"',
  },
  {
    what: 'a variable name over 256 characters',
    call: env('N'.repeat(257)),
    code: INVALID_ARGUMENT,
    details: '"name" must be at most 256 characters; got 257',
  },
  {
    what: 'LD_PRELOAD',
    call: env('LD_PRELOAD'),
    code: INVALID_ARGUMENT,
    details: guarded('LD_PRELOAD'),
  },
  { what: 'PATH', call: env('PATH'), code: INVALID_ARGUMENT, details: guarded('PATH') },
  {
    what: 'NODE_OPTIONS',
    call: env('NODE_OPTIONS'),
    code: INVALID_ARGUMENT,
    details: guarded('NODE_OPTIONS'),
  },
  {
    what: 'RUNKEYS_TOKEN',
    call: env('RUNKEYS_TOKEN'),
    code: INVALID_ARGUMENT,
    details: guarded('RUNKEYS_TOKEN'),
  },
  {
    what: 'DYLD_INSERT_LIBRARIES',
    call: env('DYLD_INSERT_LIBRARIES'),
    code: INVALID_ARGUMENT,
    details: guarded('DYLD_INSERT_LIBRARIES'),
  },
  {
    what: 'a guarded name on update as well',
    call: req(Env.updateEnvVar, {
      ...acme,
      name: 'LD_LIBRARY_PATH',
      value: '/x',
      allowMissing: true,
    }),
    code: INVALID_ARGUMENT,
    details: guarded('LD_LIBRARY_PATH'),
  },
  {
    what: 'a value one byte over 64 KiB',
    call: env('BIG', 'x'.repeat(65537)),
    code: INVALID_ARGUMENT,
    details: '"value" must be at most 65536 bytes of UTF-8; got 65537',
  },
  {
    what: 'a value over 64 KiB counted in UTF-8 bytes, not characters',
    call: env('BIG', 'é'.repeat(32769)),
    code: INVALID_ARGUMENT,
    details: '"value" must be at most 65536 bytes of UTF-8; got 65538',
  },
  {
    what: 'a value with a NUL byte',
    call: env('NUL_VALUE', 'ab\0cd'),
    code: INVALID_ARGUMENT,
    details: '"value" must not contain NUL bytes',
  },
  {
    what: 'an empty sensitive value',
    call: env('EMPTY', ''),
    code: INVALID_ARGUMENT,
    details: '"value" must not be empty for a sensitive variable',
  },
  {
    what: 'a variable in a collection that does not exist',
    call: req(Env.createEnvVar, { collection: 'nope', name: 'X', value: 'v' }),
    code: NOT_FOUND,
    details: 'collection "nope" not found',
  },
  {
    what: 'an update of a missing variable without allow_missing',
    call: req(Env.updateEnvVar, { ...acme, name: 'MISSING', value: 'v' }),
    code: NOT_FOUND,
    details: 'variable "MISSING" not found in collection "acme"',
  },
  {
    what: 'a create of a variable that exists',
    call: env('PLAIN_URL'),
    code: ALREADY_EXISTS,
    details: 'variable "PLAIN_URL" already exists in collection "acme"',
  },
  {
    what: 'an unknown provider',
    call: key('mistral', { apiKey: 'sk-0123456789ab' }),
    code: INVALID_ARGUMENT,
    details: `"provider" must be one of ${PROVIDERS}; got "mistral"`,
  },
  {
    what: 'an empty provider',
    call: key('', { apiKey: 'sk-0123456789ab' }),
    code: INVALID_ARGUMENT,
    details: `"provider" is required; one of ${PROVIDERS}`,
  },
  {
    what: 'bedrock without a region',
    call: key('bedrock', { bearerToken: 'bedrock-0123456789' }),
    code: INVALID_ARGUMENT,
    details: '"credential.region" is required for provider bedrock',
  },
  {
    what: 'bedrock with both an access key pair and a bearer token',
    call: bedrock({ accessKeyId: 'AKIA0123', secretAccessKey: 's3cr3t', bearerToken: 'b3ar3r' }),
    code: INVALID_ARGUMENT,
    details: `"credential" for provider bedrock must hold ${BEDROCK_SHAPES}, not both`,
  },
  {
    what: 'bedrock with a region and no credential',
    call: bedrock({}),
    code: INVALID_ARGUMENT,
    details: `"credential" for provider bedrock must hold ${BEDROCK_SHAPES}`,
  },
  {
    what: 'bedrock with half an access key pair',
    call: bedrock({ accessKeyId: 'AKIA0123' }),
    code: INVALID_ARGUMENT,
    details: '"credential.secret_access_key" is required with an access key pair',
  },
  {
    what: 'a bedrock session token without an access key pair',
    call: bedrock({ bearerToken: 'b3ar3r', sessionToken: 'sess' }),
    code: INVALID_ARGUMENT,
    details: '"credential.session_token" must be empty without an access key pair',
  },
  {
    what: 'a region that is not an AWS region',
    call: key('bedrock', { region: 'mars-north', bearerToken: 'b3ar3r' }),
    code: INVALID_ARGUMENT,
    details: '"credential.region" must be an AWS region such as us-east-1; got "mars-north"',
  },
  {
    what: 'an anthropic key without api_key',
    call: key('anthropic', { baseUrl: 'https://proxy.example' }),
    code: INVALID_ARGUMENT,
    details: '"credential.api_key" is required for provider anthropic',
  },
  {
    what: 'an api_key with whitespace',
    call: key('openai', { apiKey: 'sk-abc def' }),
    code: INVALID_ARGUMENT,
    details: '"credential.api_key" must not contain whitespace or NUL bytes',
  },
  {
    what: 'a field the provider does not take',
    call: key('openai', { apiKey: 'sk-0123456789ab', region: 'us-east-1' }),
    code: INVALID_ARGUMENT,
    details: '"credential.region" must be empty for provider openai, which takes api_key, base_url',
  },
  {
    what: 'a base URL that is not http or https',
    call: key('vllm', { baseUrl: 'ftp://models.example' }),
    code: INVALID_ARGUMENT,
    details: '"credential.base_url" must use https or http',
  },
  {
    what: 'a base URL that is not a URL',
    call: key('vllm', { baseUrl: 'models-local' }),
    code: INVALID_ARGUMENT,
    details: '"credential.base_url" must be an absolute URL',
  },
  {
    what: 'an api_key over 8192 characters',
    call: key('gemini', { apiKey: 'k'.repeat(8193) }),
    code: INVALID_ARGUMENT,
    details: '"credential.api_key" must be at most 8192 characters',
  },
  {
    what: 'a second key for a provider through create',
    call: key('anthropic', { apiKey: 'sk-ant-0123456789' }),
    code: ALREADY_EXISTS,
    details:
      'collection "acme" already has a key for anthropic; replace it with UpdateProviderKey ' +
      '(runkeys providers set anthropic --collection acme)',
  },
  {
    what: 'an update of a missing provider key without allow_missing',
    call: req(Providers.updateProviderKey, {
      ...acme,
      provider: 'openai',
      credential: { apiKey: 'sk-0123' },
    }),
    code: NOT_FOUND,
    details: 'collection "acme" has no openai key',
  },
  {
    what: 'a negative page_size',
    call: req(Env.listEnvVars, { ...acme, pageSize: -1 }),
    code: INVALID_ARGUMENT,
    details: '"page_size" must be between 0 and 1000; got -1',
  },
  {
    what: 'a page_size over 1000',
    call: req(Providers.listProviderKeys, { ...acme, pageSize: 1001 }),
    code: INVALID_ARGUMENT,
    details: '"page_size" must be between 0 and 1000; got 1001',
  },
  {
    what: 'a page_token that is not one',
    call: req(Env.listEnvVars, { ...acme, pageToken: 'not-a-token!' }),
    code: INVALID_ARGUMENT,
    details: BAD_PAGE_TOKEN,
  },
  {
    what: 'a page_token from another list',
    call: req(Providers.listProviderKeys, (ctx) => ({ ...acme, pageToken: ctx.envPageToken })),
    code: INVALID_ARGUMENT,
    details: BAD_PAGE_TOKEN,
  },
];

describeMalformedTable('malformed requests to the collection, env var and provider layers', CASES);
