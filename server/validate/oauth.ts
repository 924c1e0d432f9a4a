import type {
  FileInjection,
  OAuthClientInput,
  TokenInjection,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { invalid } from '../errors.js';
import { PROVIDERS } from '../layers/providers.js';
import { maxLength, quote, required } from './common.js';
import { envName } from './env-vars.js';

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
export const EXPIRY_UNITS = ['seconds', 'milliseconds', 'rfc3339'] as const;

/** What is stored of a client registration besides its sealed secret. */
export interface ClientConfig {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  device_authorization_endpoint: string;
  revocation_endpoint: string;
  client_id: string;
  token_endpoint_auth_method: AuthMethod;
  scopes: string[];
  injection: TokenInjection;
  /** '' for tool accounts; a provider name for accounts that are a runtime's credential. */
  provider: string;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const FIELD_NAME = /^[A-Za-z0-9_]{1,64}$/;
const PLACEHOLDER = /\{\{(access_token|expires_at|field:[A-Za-z0-9_]{1,64})\}\}/g;
/** Env injections refuse the field refresh_token; file templates refuse it the same way. */
const REFRESH_PLACEHOLDER = '{{field:refresh_token}}';
const MAX_SCOPES = 100;
const MAX_SCOPE_CHARS = 256;
const MAX_INJECTIONS = 32;
const MAX_TEMPLATE = 16 * 1024;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** An endpoint: https, or http on loopback (development servers and tests). */
export function oauthUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // URL's own message can repeat the input; ours names the field instead.
    throw invalid(`"${field}" must be an absolute URL`);
  }
  const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    throw invalid(`"${field}" must use https (http only on localhost)`);
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid(`"${field}" must not carry credentials`);
  }
  return value;
}

const optionalUrl = (field: string, value: string): string =>
  value === '' ? '' : oauthUrl(field, value);

export function checkClientInput(
  input: OAuthClientInput | undefined,
  secretSet: boolean,
): ClientConfig {
  const c = input ?? ({} as Partial<OAuthClientInput>);
  const issuer = optionalUrl('client.issuer', c.issuer ?? '');
  const tokenEndpoint = optionalUrl('client.token_endpoint', c.tokenEndpoint ?? '');
  if (issuer === '' && tokenEndpoint === '') {
    throw invalid('"client.issuer" or "client.token_endpoint" is required');
  }

  const clientId = maxLength(
    'client.client_id',
    required('client.client_id', c.clientId ?? ''),
    512,
  );
  if (/[\s\0]/.test(clientId)) {
    throw invalid('"client.client_id" must not contain whitespace or NUL bytes');
  }

  return {
    issuer,
    authorization_endpoint: optionalUrl(
      'client.authorization_endpoint',
      c.authorizationEndpoint ?? '',
    ),
    token_endpoint: tokenEndpoint,
    device_authorization_endpoint: optionalUrl(
      'client.device_authorization_endpoint',
      c.deviceAuthorizationEndpoint ?? '',
    ),
    revocation_endpoint: optionalUrl('client.revocation_endpoint', c.revocationEndpoint ?? ''),
    client_id: clientId,
    token_endpoint_auth_method: authMethod(c.tokenEndpointAuthMethod ?? '', secretSet),
    scopes: scopeTokens('client.scopes', c.scopes ?? []),
    injection: injection(c.injection),
    provider: clientProvider(c.provider ?? ''),
  };
}

function clientProvider(value: string): string {
  if (value !== '' && !(PROVIDERS as readonly string[]).includes(value)) {
    throw invalid(
      `"client.provider" must be empty (a tool account) or one of ${PROVIDERS.join(', ')}; ` +
        `got ${quote(value)}`,
    );
  }
  return value;
}

export function clientSecret(value: string): string {
  if (value.length > 4096) throw invalid('"client.client_secret" must be at most 4096 characters');
  if (value.includes('\0')) throw invalid('"client.client_secret" must not contain NUL bytes');
  return value;
}

function authMethod(value: string, secretSet: boolean): AuthMethod {
  if (value === '') return secretSet ? 'client_secret_basic' : 'none';

  if (!(AUTH_METHODS as readonly string[]).includes(value)) {
    throw invalid(
      `"client.token_endpoint_auth_method" must be one of ${AUTH_METHODS.join(', ')}; ` +
        `got ${quote(value)}`,
    );
  }
  const method = value as AuthMethod;
  if (method !== 'none' && !secretSet) {
    throw invalid(`"client.client_secret" is required with ${method}`);
  }
  if (method === 'none' && secretSet) {
    throw invalid('"client.client_secret" must be empty with token_endpoint_auth_method none');
  }
  return method;
}

/** Scopes as RFC 6749 section 3.3 defines them: a list of printable tokens without " or \\. */
export function scopeTokens(field: string, list: string[]): string[] {
  if (list.length > MAX_SCOPES) throw invalid(`"${field}" must hold at most ${MAX_SCOPES}`);
  list.forEach((s, i) => {
    if (!SCOPE_TOKEN.test(s) || s.length > MAX_SCOPE_CHARS) {
      throw invalid(`"${field}[${i}]" must be an RFC 6749 scope token; got ${quote(s)}`);
    }
  });
  return list;
}

function injection(inj: TokenInjection | undefined): TokenInjection {
  const env = inj?.env ?? [];
  const files = inj?.files ?? [];
  if (env.length + files.length === 0) {
    throw invalid(
      '"client.injection" must name at least one environment variable or credential file',
    );
  }
  if (env.length + files.length > MAX_INJECTIONS) {
    throw invalid(`"client.injection" must hold at most ${MAX_INJECTIONS} entries`);
  }
  return {
    env: env.map((e, i) => ({
      name: envName(`client.injection.env[${i}].name`, e.name, false, false),
      field: tokenField(`client.injection.env[${i}].field`, e.field),
    })),
    files: files.map((f, i) => fileInjection(`client.injection.files[${i}]`, f)),
  };
}

function tokenField(field: string, value: string): string {
  if (value === '') return 'access_token';

  if (!FIELD_NAME.test(value)) {
    throw invalid(`"${field}" must match ${FIELD_NAME.source}; got ${quote(value)}`);
  }

  if (value === 'refresh_token') {
    throw invalid(`"${field}" must not be refresh_token: runs never receive refresh tokens`);
  }
  return value;
}

function fileInjection(field: string, f: FileInjection): FileInjection {
  const path = required(`${field}.path`, f.path);
  const relative = path.startsWith('~/') ? path.slice(2) : path;
  const segments = relative.split('/');
  if (
    path.startsWith('/') ||
    relative === '' ||
    segments.some((s) => s === '..' || s === '' || s === '.') ||
    path.includes('\0')
  ) {
    throw invalid(
      `"${field}.path" must be "~/<path>" under the home directory or a relative path under ` +
        `the working directory, without "." or ".." segments; got ${quote(path)}`,
    );
  }

  const template = required(`${field}.template`, f.template);
  if (template.length > MAX_TEMPLATE) {
    throw invalid(`"${field}.template" must be at most ${MAX_TEMPLATE} characters`);
  }
  if (!template.includes('{{access_token}}')) {
    throw invalid(`"${field}.template" must contain {{access_token}}`);
  }
  const filled = template.replace(PLACEHOLDER, '0');
  if (filled.includes('{{')) {
    throw invalid(
      `"${field}.template" must use only the placeholders {{access_token}}, {{expires_at}} ` +
        'and {{field:NAME}}',
    );
  }
  if (template.includes(REFRESH_PLACEHOLDER)) {
    throw invalid(
      `"${field}.template" must not contain ${REFRESH_PLACEHOLDER}: runs never receive refresh ` +
        'tokens',
    );
  }
  try {
    JSON.parse(filled);
  } catch {
    // The parser's message would quote the template back.
    throw invalid(`"${field}.template" must be valid JSON once its placeholders are filled`);
  }

  const unit = f.expiryUnit === '' ? 'seconds' : f.expiryUnit;
  if (!(EXPIRY_UNITS as readonly string[]).includes(unit)) {
    throw invalid(
      `"${field}.expiry_unit" must be one of ${EXPIRY_UNITS.join(', ')}; got ${quote(unit)}`,
    );
  }
  return { path, template, expiryUnit: unit };
}
