import * as oauth from 'oauth4webapi';

/** Thrown when the provider's metadata cannot be had; a transient failure. */
export class DiscoveryError extends Error {
  constructor(cause: unknown) {
    super('authorization server metadata could not be fetched', { cause });
    this.name = 'DiscoveryError';
  }
}

/**
 * Access-token lifetime when the provider's `expires_in` is missing, zero, negative or not a
 * number: fifteen minutes, short enough that a token which really lives less is soon replaced.
 */
export const DEFAULT_LIFETIME_S = 900;
/** A longer `expires_in` is taken as this: the token is then refreshed at least daily. */
export const MAX_LIFETIME_S = 86_400;

/** The sealed token set of an account. */
export interface StoredTokens {
  access_token: string;
  refresh_token: string;
  extra: Record<string, string>;
}

const STANDARD_FIELDS = new Set([
  'access_token',
  'refresh_token',
  'token_type',
  'expires_in',
  'scope',
  'id_token',
]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Cleans a successful token response before oauth4webapi reads it: an `expires_in` that is not
 * a positive number (a word, a negative number) is dropped, so the documented default applies
 * instead of the whole response being refused, which would lose the rotated refresh token it
 * carries. Nothing else is changed.
 */
export async function normaliseTokenResponse(res: Response): Promise<Response> {
  if (res.status !== 200 || !(res.headers.get('content-type') ?? '').includes('json')) return res;
  const text = await res.text();
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  const init = { status: res.status, statusText: res.statusText, headers };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return new Response(text, init);
  }
  if (isRecord(body) && 'expires_in' in body) {
    const raw = body.expires_in;
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : Number.NaN;
    if (Number.isFinite(n) && n > 0) body.expires_in = n;
    else delete body.expires_in;
  }
  return new Response(JSON.stringify(body), init);
}

/** Seconds the access token is taken to live: see DEFAULT_LIFETIME_S and MAX_LIFETIME_S. */
export function lifetimeSeconds(expiresIn: unknown): number {
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn < 1) {
    return DEFAULT_LIFETIME_S;
  }
  return Math.min(Math.floor(expiresIn), MAX_LIFETIME_S);
}

/**
 * What is kept of a token response: the access token, the refresh token (the previous one when
 * the response carries none), and the other string or number fields that injections may name.
 */
export function tokensFrom(res: oauth.TokenEndpointResponse, previousRefresh: string) {
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(res)) {
    if (STANDARD_FIELDS.has(k) || !/^[A-Za-z0-9_]{1,64}$/.test(k)) continue;
    if (typeof v === 'string' || typeof v === 'number') extra[k] = String(v);
  }
  const tokens: StoredTokens = {
    access_token: res.access_token,
    refresh_token: res.refresh_token ?? previousRefresh,
    extra,
  };
  return { tokens, lifetimeS: lifetimeSeconds(res.expires_in), scope: res.scope };
}

/**
 * How a failed call to the provider is taken:
 * - `invalid_grant`: the grant is gone (revoked consent, a refresh token already used);
 * - `transient`: network, timeout, 5xx, 429, `temporarily_unavailable`: try again later;
 * - `refused`: the provider refuses the client (bad secret, scope): an admin fixes the client,
 *   attempts go on with the longest backoff.
 * `code` is an OAuth error code or a short word, never text from a token.
 */
export interface Failure {
  kind: 'invalid_grant' | 'transient' | 'refused';
  code: string;
  retryAfterMs?: number;
}

const TRANSIENT_CODES = new Set(['temporarily_unavailable', 'server_error', 'slow_down']);

export function classify(err: unknown, now: number): Failure {
  if (err instanceof oauth.ResponseBodyError) {
    const code = /^[\x20-\x7e]{1,64}$/.test(err.error) ? err.error : 'error';
    const label = `${code} (HTTP ${err.status})`;
    if (err.error === 'invalid_grant') return { kind: 'invalid_grant', code: label };
    if (err.status === 429 || err.status >= 500 || TRANSIENT_CODES.has(err.error)) {
      return { kind: 'transient', code: label, retryAfterMs: retryAfter(err.response, now) };
    }
    return { kind: 'refused', code: label };
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    return { kind: 'refused', code: `client authentication refused (HTTP ${err.status})` };
  }
  if (err instanceof DiscoveryError) return { kind: 'transient', code: 'metadata unavailable' };
  if (err instanceof oauth.OperationProcessingError) {
    const res = err.cause instanceof Response ? err.cause : undefined;
    if (res !== undefined && (res.status === 429 || res.status >= 500)) {
      return { kind: 'transient', code: `HTTP ${res.status}`, retryAfterMs: retryAfter(res, now) };
    }
    return { kind: 'transient', code: 'invalid response' };
  }
  const name = (err as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return { kind: 'transient', code: 'timeout' };
  return { kind: 'transient', code: 'network error' };
}

/** Retry-After in milliseconds (seconds or an HTTP date), capped at an hour. */
function retryAfter(res: Response, now: number): number | undefined {
  const value = res.headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 3_600_000) : undefined;
}

/**
 * What of an OAuth failure may be logged: its name, message, code and HTTP status. Never the
 * error itself: oauth4webapi attaches the response body as the cause of a token response it
 * refuses, and that body can hold the tokens.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const { code, status } = err as { code?: unknown; status?: unknown };
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof status === 'number' ? { status } : {}),
  };
}
