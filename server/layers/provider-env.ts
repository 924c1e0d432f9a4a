import type { Credential, CredentialField, ProviderName } from './providers.js';

/**
 * Where a provider's credential lands in a run's environment: the names its SDKs and CLIs read.
 * docs/providers.md carries the same table. Base URLs and regions are configuration (not
 * scrubbed); keys and tokens are sensitive.
 */
export interface EnvMapping {
  field: CredentialField;
  name: string;
  sensitive: boolean;
}

export const PROVIDER_ENV: Record<ProviderName, readonly EnvMapping[]> = {
  anthropic: [
    { field: 'api_key', name: 'ANTHROPIC_API_KEY', sensitive: true },
    { field: 'base_url', name: 'ANTHROPIC_BASE_URL', sensitive: false },
  ],
  openai: [
    { field: 'api_key', name: 'OPENAI_API_KEY', sensitive: true },
    { field: 'base_url', name: 'OPENAI_BASE_URL', sensitive: false },
  ],
  bedrock: [
    { field: 'access_key_id', name: 'AWS_ACCESS_KEY_ID', sensitive: true },
    { field: 'secret_access_key', name: 'AWS_SECRET_ACCESS_KEY', sensitive: true },
    { field: 'session_token', name: 'AWS_SESSION_TOKEN', sensitive: true },
    { field: 'bearer_token', name: 'AWS_BEARER_TOKEN_BEDROCK', sensitive: true },
    { field: 'region', name: 'AWS_REGION', sensitive: false },
  ],
  openrouter: [
    { field: 'api_key', name: 'OPENROUTER_API_KEY', sensitive: true },
    { field: 'base_url', name: 'OPENROUTER_BASE_URL', sensitive: false },
  ],
  gemini: [
    { field: 'api_key', name: 'GEMINI_API_KEY', sensitive: true },
    { field: 'base_url', name: 'GOOGLE_GEMINI_BASE_URL', sensitive: false },
  ],
  vllm: [
    { field: 'base_url', name: 'OPENAI_BASE_URL', sensitive: false },
    { field: 'api_key', name: 'OPENAI_API_KEY', sensitive: true },
  ],
};

/**
 * Names a run of the provider never carries, from any layer or from the sandbox's own
 * environment, so that no SDK picks up a different key: Google's SDKs prefer GOOGLE_API_KEY
 * over GEMINI_API_KEY when both are set.
 */
export const PROVIDER_FORBIDDEN: Record<ProviderName, readonly string[]> = {
  anthropic: [],
  openai: [],
  bedrock: [],
  openrouter: [],
  gemini: ['GOOGLE_API_KEY'],
  vllm: [],
};

export function providerEntries(provider: ProviderName, c: Credential) {
  return PROVIDER_ENV[provider].flatMap((m) => {
    const value = c[m.field];
    return value === undefined ? [] : [{ name: m.name, value, sensitive: m.sensitive }];
  });
}

/**
 * Names removed from the child's inherited environment: the forbidden ones, and every name of
 * the provider's table that this credential leaves unset (a vLLM run without a key must not
 * pick up an OPENAI_API_KEY baked into the sandbox image). The bundle's own entries are added
 * after, so a layer that sets one of these names still wins.
 */
export function inheritedUnset(provider: ProviderName, c: Credential): string[] {
  const unsetMapped = PROVIDER_ENV[provider]
    .filter((m) => c[m.field] === undefined)
    .map((m) => m.name);
  return [...new Set([...PROVIDER_FORBIDDEN[provider], ...unsetMapped])];
}
