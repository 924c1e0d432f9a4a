import * as oauth from 'oauth4webapi';
import { type CollectionKeys, openValue } from '../crypto/keyring.js';
import { clientSecretContext } from '../services/oauth-clients.js';
import type { OAuthClientTable } from '../store/schema.js';
import type { ClientConfig } from '../validate/oauth.js';
import { DiscoveryError, normaliseTokenResponse } from './tokens.js';

/** Every call to a provider gives up after this long; the caller treats it as transient. */
export const PROVIDER_TIMEOUT_MS = 15_000;
const DISCOVERY_TTL_MS = 10 * 60_000;

/** What oauth4webapi needs to talk to one provider as one client. */
export interface Provider {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  config: ClientConfig;
  /** Options for every request: timeout, http allowed on loopback, token responses cleaned. */
  http(): oauth.TokenEndpointRequestOptions;
}

const discovered = new Map<string, { as: oauth.AuthorizationServer; until: number }>();

function requestOptions(insecure: boolean): oauth.TokenEndpointRequestOptions {
  return {
    signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    // Registration allows http only on loopback (validate/oauth.ts).
    [oauth.allowInsecureRequests]: insecure,
    [oauth.customFetch]: async (url, init) => normaliseTokenResponse(await fetch(url, init)),
  };
}

/**
 * The provider's metadata: discovered from the issuer (OpenID Connect discovery, then RFC 8414)
 * and kept for ten minutes, with any endpoint registered explicitly taking precedence; or, with
 * no issuer, the registered endpoints alone, under the token endpoint's origin as issuer. The
 * RFC 9207 `iss` check compares against that issuer, so providers that send `iss` are
 * registered by issuer.
 */
async function authorizationServer(c: ClientConfig): Promise<oauth.AuthorizationServer> {
  const given = {
    authorization_endpoint: c.authorization_endpoint,
    token_endpoint: c.token_endpoint,
    device_authorization_endpoint: c.device_authorization_endpoint,
    revocation_endpoint: c.revocation_endpoint,
  };
  const explicit = Object.fromEntries(
    Object.entries(given).filter(([, url]) => url !== ''),
  ) as Partial<oauth.AuthorizationServer>;
  if (c.issuer === '') {
    return { issuer: new URL(c.token_endpoint).origin, ...explicit };
  }
  const hit = discovered.get(c.issuer);
  if (hit !== undefined && hit.until > Date.now()) return { ...hit.as, ...explicit };
  const issuer = new URL(c.issuer);
  const insecure = issuer.protocol === 'http:';
  let as: oauth.AuthorizationServer | undefined;
  let lastError: unknown;
  for (const algorithm of ['oidc', 'oauth2'] as const) {
    try {
      const res = await oauth.discoveryRequest(issuer, {
        algorithm,
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
        [oauth.allowInsecureRequests]: insecure,
      });
      as = await oauth.processDiscoveryResponse(issuer, res);
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (as === undefined) throw new DiscoveryError(lastError);
  discovered.set(c.issuer, { as, until: Date.now() + DISCOVERY_TTL_MS });
  return { ...as, ...explicit };
}

/** Builds the provider view of a registered client; opens its secret with the collection key. */
export async function providerFor(row: OAuthClientTable, keys: CollectionKeys): Promise<Provider> {
  const config = JSON.parse(row.config) as ClientConfig;
  const as = await authorizationServer(config);
  const secret =
    row.client_secret_sealed === null
      ? ''
      : openValue(keys, clientSecretContext(row.collection, row.name), row.client_secret_sealed);
  const auth =
    config.token_endpoint_auth_method === 'client_secret_post'
      ? oauth.ClientSecretPost(secret)
      : config.token_endpoint_auth_method === 'client_secret_basic'
        ? oauth.ClientSecretBasic(secret)
        : oauth.None();
  const endpoints = [config.issuer, config.token_endpoint, as.token_endpoint ?? ''];
  const insecure = endpoints.some((u) => u.startsWith('http:'));
  return {
    as,
    client: { client_id: config.client_id },
    auth,
    config,
    http: () => requestOptions(insecure),
  };
}

/** Forgets discovered metadata (tests that restart a provider on another port). */
export function forgetDiscovery(): void {
  discovered.clear();
}
