import { invalid } from '../errors.js';
import { httpsUrl, quote } from '../validate/common.js';

export const PROVIDERS = [
  'anthropic',
  'openai',
  'bedrock',
  'openrouter',
  'gemini',
  'vllm',
] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export const CREDENTIAL_FIELDS = [
  'api_key',
  'base_url',
  'region',
  'access_key_id',
  'secret_access_key',
  'session_token',
  'bearer_token',
] as const;
export type CredentialField = (typeof CREDENTIAL_FIELDS)[number];

/** A provider credential as stored (sealed) and as the bundle will map it. */
export type Credential = Partial<Record<CredentialField, string>>;

const MAX_FIELD_CHARS = 8192;
/** Below this length the last four characters would give away too much of a key. */
const LAST_FOUR_MIN_LENGTH = 12;
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

interface ProviderRule {
  /** Fields the provider takes at all. */
  fields: readonly CredentialField[];
  /** Fields that must be set. */
  required: readonly CredentialField[];
}

const KEYED: ProviderRule = { fields: ['api_key', 'base_url'], required: ['api_key'] };

const RULES: Record<ProviderName, ProviderRule> = {
  anthropic: KEYED,
  openai: KEYED,
  openrouter: KEYED,
  gemini: KEYED,
  vllm: { fields: ['base_url', 'api_key'], required: ['base_url'] },
  bedrock: {
    fields: ['region', 'access_key_id', 'secret_access_key', 'session_token', 'bearer_token'],
    required: ['region'],
  },
};

export function providerName(value: string): ProviderName {
  if (value === '') throw invalid(`"provider" is required; one of ${PROVIDERS.join(', ')}`);

  if (!(PROVIDERS as readonly string[]).includes(value)) {
    throw invalid(`"provider" must be one of ${PROVIDERS.join(', ')}; got ${quote(value)}`);
  }
  return value as ProviderName;
}

/** Checks a credential against its provider's shape; returns only the fields that are set. */
export function checkCredential(provider: ProviderName, input: Credential): Credential {
  const rule = RULES[provider];
  const out: Credential = {};
  for (const field of CREDENTIAL_FIELDS) {
    const value = input[field] ?? '';
    if (value === '') continue;

    if (!rule.fields.includes(field)) {
      throw invalid(
        `"credential.${field}" must be empty for provider ${provider}, which takes ` +
          rule.fields.join(', '),
      );
    }
    checkFieldValue(field, value);
    out[field] = value;
  }
  for (const field of rule.required) {
    if (out[field] === undefined) {
      throw invalid(`"credential.${field}" is required for provider ${provider}`);
    }
  }
  if (provider === 'bedrock') checkBedrockAuth(out);
  return out;
}

function checkFieldValue(field: CredentialField, value: string): void {
  if (value.length > MAX_FIELD_CHARS) {
    throw invalid(`"credential.${field}" must be at most ${MAX_FIELD_CHARS} characters`);
  }

  if (/[\s\0]/.test(value)) {
    throw invalid(`"credential.${field}" must not contain whitespace or NUL bytes`);
  }

  if (field === 'base_url') httpsUrl('credential.base_url', value, { allowHttp: true });
  if (field === 'region' && !AWS_REGION.test(value)) {
    throw invalid(
      `"credential.region" must be an AWS region such as us-east-1; got ${quote(value)}`,
    );
  }
}

const BEDROCK_SHAPES = 'either access_key_id and secret_access_key, or bearer_token';

function checkBedrockAuth(c: Credential): void {
  const pair = c.access_key_id !== undefined || c.secret_access_key !== undefined;
  if (pair && c.bearer_token !== undefined) {
    throw invalid(`"credential" for provider bedrock must hold ${BEDROCK_SHAPES}, not both`);
  }

  if (!pair && c.bearer_token === undefined) {
    throw invalid(`"credential" for provider bedrock must hold ${BEDROCK_SHAPES}`);
  }

  if (pair && (c.access_key_id === undefined || c.secret_access_key === undefined)) {
    const missing = c.access_key_id === undefined ? 'access_key_id' : 'secret_access_key';
    throw invalid(`"credential.${missing}" is required with an access key pair`);
  }

  if (c.session_token !== undefined && !pair) {
    throw invalid('"credential.session_token" must be empty without an access key pair');
  }
}

/** The field whose last four characters reads may show. */
export function secretField(c: Credential): string | undefined {
  return c.api_key ?? c.secret_access_key ?? c.bearer_token;
}

export function lastFour(c: Credential): string {
  const secret = secretField(c);
  if (secret === undefined || secret.length < LAST_FOUR_MIN_LENGTH) return '';
  return secret.slice(-4);
}
