/**
 * A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider 8) on a loopback port,
 * for tests of OAuth clients that run in another process or module.
 *
 * It issues opaque access tokens with a short TTL, refresh tokens for the authorization code and
 * device code grants (no `offline_access` scope needed), rotates refresh tokens, requires PKCE S256,
 * puts the RFC 9207 `iss` parameter in authorization responses, and plays the browser for its own
 * development login and consent pages.
 */
import { generateKeyPair, type JsonWebKey, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error -- oidc-provider 8 ships no type declarations; the minimal ones used are below.
import Provider from 'oidc-provider';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** A client the server knows, as registration metadata (snake_case, like the provider wants). */
export interface OidcClient {
  client_id: string;
  client_secret?: string;
  /** Default: client_secret_basic when a secret is given, none otherwise. */
  token_endpoint_auth_method?: TokenEndpointAuthMethod;
  /** Needed for the authorization code flow; may be empty for a device-flow-only client. */
  redirect_uris?: string[];
  /**
   * Default: authorization_code (only with redirect_uris), refresh_token and the device code
   * grant.
   */
  grant_types?: string[];
  /** 'native' allows http loopback redirect URIs with any port (RFC 8252). Default: 'web'. */
  application_type?: 'web' | 'native';
}

export interface OidcServerOptions {
  /** Lifetime of access tokens (`expires_in`), in seconds. Default 5. */
  accessTokenTtlSeconds?: number;
  /** Lifetime of refresh tokens, in seconds. Default one day. */
  refreshTokenTtlSeconds?: number;
  /**
   * Default true: every refresh returns a new refresh token and consumes the old one. Reusing a
   * consumed token answers invalid_grant and (oidc-provider's reuse detection) revokes the whole
   * grant, so the newest refresh token dies with it.
   */
  rotateRefreshToken?: boolean;
  /**
   * Scope values to grant besides openid and offline_access (e.g. 'api'). An authorization request
   * needs at least one scope the server knows, or it ends in error=access_denied.
   */
  scopes?: string[];
  clients: OidcClient[];
  /** Loopback port to listen on. Default: a random free one. */
  port?: number;
}

export interface AuthorizeOptions {
  /** Fetch the callback URL too (following its redirects) and return its status and body. */
  followCallback?: boolean;
  /** Login name typed into the login form; it becomes the `sub`. Default 'user'. */
  login?: string;
}

export interface AuthorizeResult {
  /** Where the provider sent the browser: the client's redirect_uri with code, state and iss. */
  callbackUrl: string;
  /** With followCallback: the callback's final HTTP status. */
  status?: number;
  /** With followCallback: the callback's response body. */
  body?: string;
}

/** One token endpoint request as the provider saw it. */
export interface TokenRequest {
  /** '' when the body had no readable grant_type. */
  grantType: string;
  clientId: string | undefined;
  /**
   * How the client authenticated: an HTTP Basic header, client_secret in the body, a JWT
   * assertion, or none. oidc-provider 8 accepts client_secret_basic and client_secret_post
   * interchangeably for a client registered with either, so check this to pin the method.
   */
  authMethod: 'client_secret_basic' | 'client_secret_post' | 'jwt' | 'none';
  /** HTTP status of the answer. */
  status: number;
}

export interface OidcServer {
  /** The issuer identifier, http://127.0.0.1:PORT (no trailing slash). */
  readonly issuer: string;
  readonly port: number;
  /**
   * Token endpoint requests that reached the provider, successful or not, for one grant_type, or
   * all of them without an argument. Requests whose grant_type could not be read count as ''.
   */
  tokenRequests(grantType?: string): number;
  /** Every token endpoint request since the start or the last resetCounts(), oldest first. */
  tokenRequestLog(): TokenRequest[];
  /** Clears tokenRequests() and tokenRequestLog(). */
  resetCounts(): void;
  /** Registers one more client while running; throws when the provider rejects the metadata. */
  addClient(client: OidcClient): Promise<void>;
  /**
   * Simulates the provider being down: closes the listener and destroys open sockets (keep-alive
   * ones too), so requests fail with a network error. State (grants, tokens) survives.
   */
  stop(): Promise<void>;
  /** Listens again, on the same port. A no-op while already listening. */
  start(): Promise<void>;
  /** Stops for good. Idempotent. */
  close(): Promise<void>;
  /**
   * Revokes every consent: destroys every grant with its access tokens, refresh tokens and codes,
   * so the refresh_token grant answers invalid_grant. Resolves with how many grants went away.
   */
  revokeAllGrants(): Promise<number>;
  /**
   * Plays the browser for an authorization request URL: follows redirects with a cookie jar,
   * submits the provider's login form (any login, any password) and consent form, and resolves
   * with the redirect that leaves the provider, without fetching it unless followCallback is set.
   * Error redirects (e.g. `error=invalid_request` without PKCE) resolve too; the provider's own
   * error pages reject.
   */
  authorize(authorizationUrl: string, opts?: AuthorizeOptions): Promise<AuthorizeResult>;
  /**
   * Completes a device authorization as the user would: opens the verification URI, enters the
   * user code, confirms, logs in and consents. Rejects when the code is unknown, expired or used,
   * and ("the interaction was aborted") when the device request carried no scope the server knows.
   */
  approveDevice(userCode: string, opts?: { login?: string }): Promise<void>;
}

// --- The slice of oidc-provider's API used here -------------------------------------------------

interface KoaContext {
  method: string;
  path: string;
  status: number;
  get(header: string): string;
  type: string;
  body: unknown;
  oidc?: {
    /** The parsed form body, on endpoints that take one. */
    body?: Record<string, unknown>;
    client?: { clientId: string };
  };
}

type Next = () => Promise<unknown>;

interface ProviderClient {
  grantTypeAllowed(grantType: string): boolean;
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  /** Adds a koa middleware that runs before the provider's own ones. */
  use(middleware: (ctx: KoaContext, next: Next) => Promise<void>): void;
  Client: { validate(metadata: ClientMetadata): Promise<void> };
}

type ProviderConstructor = new (issuer: string, configuration: object) => ProviderInstance;

const OidcProvider = Provider as ProviderConstructor;

interface ClientMetadata {
  client_id: string;
  client_secret?: string;
  token_endpoint_auth_method: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  application_type: string;
}

type Payload = Record<string, unknown>;

// --- Storage ------------------------------------------------------------------------------------

interface Entry {
  payload: Payload;
  /** Epoch ms, or undefined for no expiry. */
  expiresAt: number | undefined;
}

/**
 * Per-server storage behind the provider's adapter interface. The bundled memory adapter keeps one
 * store per process (shared by every Provider) and cannot list grants; this one can.
 */
class Store {
  private readonly entries = new Map<string, Entry>();
  private readonly byGrant = new Map<string, Set<string>>();
  private readonly byUserCode = new Map<string, string>();
  private readonly bySessionUid = new Map<string, string>();

  set(model: string, id: string, payload: Payload, expiresInSeconds?: number): void {
    const key = `${model}:${id}`;
    const expiresAt = expiresInSeconds ? Date.now() + expiresInSeconds * 1000 : undefined;
    this.entries.set(key, { payload: structuredClone(payload), expiresAt });
    if (typeof payload.grantId === 'string') {
      const keys = this.byGrant.get(payload.grantId) ?? new Set<string>();
      keys.add(key);
      this.byGrant.set(payload.grantId, keys);
    }
    if (typeof payload.userCode === 'string') this.byUserCode.set(payload.userCode, id);
    if (model === 'Session' && typeof payload.uid === 'string') {
      this.bySessionUid.set(payload.uid, id);
    }
  }

  get(model: string, id: string | undefined): Payload | undefined {
    if (id === undefined) return undefined;
    const key = `${model}:${id}`;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return structuredClone(entry.payload);
  }

  idForUserCode(userCode: string): string | undefined {
    return this.byUserCode.get(userCode);
  }

  idForSessionUid(uid: string): string | undefined {
    return this.bySessionUid.get(uid);
  }

  consume(model: string, id: string): void {
    const entry = this.entries.get(`${model}:${id}`);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  delete(model: string, id: string): void {
    this.entries.delete(`${model}:${id}`);
  }

  /** Deletes everything issued under a grant (not the Grant itself). */
  deleteByGrant(grantId: string): void {
    for (const key of this.byGrant.get(grantId) ?? []) this.entries.delete(key);
    this.byGrant.delete(grantId);
  }

  ids(model: string): string[] {
    const prefix = `${model}:`;
    return [...this.entries.keys()]
      .filter((key) => key.startsWith(prefix))
      .map((key) => key.slice(prefix.length));
  }
}

/** An adapter class (oidc-provider constructs one per model name) over the given store. */
function adapterFor(store: Store) {
  return class HarnessAdapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      store.set(this.model, id, payload, expiresIn);
    }

    async find(id: string): Promise<Payload | undefined> {
      return store.get(this.model, id);
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      return store.get(this.model, store.idForUserCode(userCode));
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      return store.get(this.model, store.idForSessionUid(uid));
    }

    async consume(id: string): Promise<void> {
      store.consume(this.model, id);
    }

    async destroy(id: string): Promise<void> {
      store.delete(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      store.deleteByGrant(grantId);
    }
  };
}

// --- Provider configuration ---------------------------------------------------------------------

let signingKey: Promise<JsonWebKey> | undefined;

/** One RSA signing key per process (RS256 is every client's default ID token algorithm). */
function rsaSigningKey(): Promise<JsonWebKey> {
  signingKey ??= new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, _publicKey, privateKey) => {
      if (err) reject(err);
      else resolve({ ...privateKey.export({ format: 'jwk' }), kid: 'harness-rs256', use: 'sig' });
    });
  });
  return signingKey;
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function unescapeHtml(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, code: string) =>
      String.fromCodePoint(Number.parseInt(code, 16)),
    )
    .replaceAll('&quot;', '"')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head><body>
${body}
</body></html>`;
}

/** Replaces the provider's default pages, which print a notice on first use. */
const pages = {
  async renderError(ctx: KoaContext, out: Record<string, unknown>): Promise<void> {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre id="harness-error">${escapeHtml(JSON.stringify(out))}</pre>`);
  },

  async userCodeInputSource(
    ctx: KoaContext,
    form: string,
    out?: { error?: string; error_description?: string },
    err?: Error,
  ): Promise<void> {
    const problem =
      err === undefined
        ? ''
        : `<p id="harness-device-error">${escapeHtml(out?.error_description ?? err.message)}</p>`;
    ctx.body = page(
      'Device sign-in',
      `${problem}\n${form}\n<button type="submit" form="op.deviceInputForm">Continue</button>`,
    );
  },

  async userCodeConfirmSource(ctx: KoaContext, form: string): Promise<void> {
    ctx.body = page(
      'Confirm device',
      `${form}\n<button type="submit" form="op.deviceConfirmForm">Continue</button>`,
    );
  },

  async successSource(ctx: KoaContext): Promise<void> {
    ctx.body = page('Sign-in success', '<h1 id="harness-device-success">Sign-in success</h1>');
  },
};

function clientMetadata(client: OidcClient): ClientMetadata {
  const redirectUris = client.redirect_uris ?? [];
  const grantTypes =
    client.grant_types ??
    (redirectUris.length > 0
      ? ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT]
      : ['refresh_token', DEVICE_CODE_GRANT]);
  return {
    client_id: client.client_id,
    ...(client.client_secret === undefined ? {} : { client_secret: client.client_secret }),
    token_endpoint_auth_method:
      client.token_endpoint_auth_method ??
      (client.client_secret === undefined ? 'none' : 'client_secret_basic'),
    redirect_uris: redirectUris,
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    application_type: client.application_type ?? 'web',
  };
}

/**
 * Constructs the provider without its unconditional "devInteractions is enabled" warning; the other
 * start-up warnings are avoided by configuration (own adapter, jwks, cookie keys).
 */
function quietProvider(issuer: string, configuration: object): ProviderInstance {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (String(args[0]).includes('devInteractions is enabled')) return;
    warn(...args);
  };
  try {
    return new OidcProvider(issuer, configuration);
  } finally {
    console.warn = warn;
  }
}

// --- The browser --------------------------------------------------------------------------------

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/** A one-origin cookie jar: names and paths, no domains (everything is on the issuer's origin). */
class CookieJar {
  private readonly cookies = new Map<string, Cookie>();

  store(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/' };
      let expired = cookie.value === '';
      for (const attribute of attributes) {
        const [key = '', value = ''] = attribute.split('=', 2);
        const name = key.toLowerCase();
        if (name === 'path' && value.startsWith('/')) cookie.path = value;
        if (name === 'max-age' && Number(value) <= 0) expired = true;
        if (name === 'expires' && Date.parse(value) <= Date.now()) expired = true;
      }
      const key = `${cookie.name};${cookie.path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  header(url: URL): string {
    const path = url.pathname;
    return [...this.cookies.values()]
      .filter(
        (c) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

interface Form {
  action: string;
  method: string;
  fields: Array<[string, string]>;
}

function attributes(tag: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of tag.matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    found.set(m[1]!.toLowerCase(), unescapeHtml(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return found;
}

/** The first form of a page, its inputs filled from `values` where the page leaves them empty. */
function parseForm(
  html: string,
  pageUrl: string,
  values: Record<string, string>,
): Form | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const attrs = attributes(form[1]!);
  const fields: Array<[string, string]> = [];
  for (const input of form[2]!.matchAll(/<input\b([^>]*)>/gi)) {
    const a = attributes(input[1]!);
    const name = a.get('name');
    const type = (a.get('type') ?? 'text').toLowerCase();
    if (!name || type === 'submit' || type === 'button') continue;
    fields.push([name, a.get('value') || values[name] || '']);
  }
  return {
    action: new URL(attrs.get('action') || pageUrl, pageUrl).href,
    method: (attrs.get('method') ?? 'get').toUpperCase(),
    fields,
  };
}

type Outcome =
  | { kind: 'left'; url: string }
  | { kind: 'page'; url: string; status: number; body: string };

const MAX_STEPS = 25;

/**
 * Browses from `start`, following redirects on the issuer's origin and submitting each page's form,
 * until a redirect leaves the origin or a page has no form. Provider error pages throw.
 */
async function browse(
  issuer: string,
  start: string,
  values: Record<string, string>,
): Promise<Outcome> {
  const origin = new URL(issuer).origin;
  const jar = new CookieJar();
  let url = start;
  let init: RequestInit = { method: 'GET' };
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = jar.header(target);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    jar.store(res.headers.getSetCookie());
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, target).href;
      init = { method: 'GET' };
      if (new URL(url).origin !== origin) return { kind: 'left', url };
      continue;
    }
    const body = await res.text();
    const error = /<pre id="harness-error">([\s\S]*?)<\/pre>/.exec(body);
    if (error) {
      throw new Error(`oidc-provider error page at ${target.pathname}: ${unescapeHtml(error[1]!)}`);
    }
    const deviceError = /<p id="harness-device-error">([\s\S]*?)<\/p>/.exec(body);
    if (deviceError) {
      throw new Error(`device verification failed: ${unescapeHtml(deviceError[1]!)}`);
    }
    const form = parseForm(body, target.href, values);
    if (!form) return { kind: 'page', url: target.href, status: res.status, body };
    url = form.action;
    init =
      form.method === 'POST'
        ? { method: 'POST', body: new URLSearchParams(form.fields) }
        : { method: 'GET' };
    if (form.method !== 'POST') {
      const next = new URL(url);
      for (const [name, value] of form.fields) next.searchParams.set(name, value);
      url = next.href;
    }
  }
  throw new Error(`gave up after ${MAX_STEPS} requests browsing from ${start}`);
}

/** Who sent a token request and how it authenticated, from its headers and parsed body. */
function describeTokenRequest(ctx: KoaContext): TokenRequest {
  const body = ctx.oidc?.body ?? {};
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const [scheme = '', credentials = ''] = ctx.get('authorization').split(' ');
  let basicClientId: string | undefined;
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    try {
      basicClientId = decodeURIComponent(decoded.split(':')[0]!.replace(/\+/g, '%20'));
    } catch {
      basicClientId = undefined;
    }
  }
  let authMethod: TokenRequest['authMethod'] = 'none';
  if (scheme.toLowerCase() === 'basic') authMethod = 'client_secret_basic';
  else if (text(body.client_secret)) authMethod = 'client_secret_post';
  else if (text(body.client_assertion)) authMethod = 'jwt';
  return {
    grantType: text(body.grant_type) ?? '',
    clientId: ctx.oidc?.client?.clientId ?? basicClientId ?? text(body.client_id),
    authMethod,
    status: ctx.status,
  };
}

// --- The server ---------------------------------------------------------------------------------

/** Starts an authorization server on 127.0.0.1 (random port unless `port` is given). */
export async function startOidcServer(options: OidcServerOptions): Promise<OidcServer> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined;
  const server = createServer((req, res) => {
    if (handler) {
      handler(req, res);
    } else {
      res.statusCode = 503;
      res.end();
    }
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });

  await listen(options.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const store = new Store();
  const log: TokenRequest[] = [];
  const staticIds = new Set(options.clients.map((c) => c.client_id));
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 5;

  const provider = quietProvider(issuer, {
    adapter: adapterFor(store),
    clients: options.clients.map(clientMetadata),
    scopes: ['openid', 'offline_access', ...(options.scopes ?? [])],
    jwks: { keys: [await rsaSigningKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    features: {
      devInteractions: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: pages.userCodeInputSource,
        userCodeConfirmSource: pages.userCodeConfirmSource,
        successSource: pages.successSource,
      },
      revocation: { enabled: true },
    },
    // Refresh tokens for every client allowed the grant, not only with scope=offline_access.
    issueRefreshToken: async (_ctx: unknown, client: ProviderClient) =>
      client.grantTypeAllowed('refresh_token'),
    // Tokens outlive the provider's browser session (which is what offline_access would do).
    expiresWithSession: async () => false,
    rotateRefreshToken: options.rotateRefreshToken ?? true,
    clientBasedCORS: () => true,
    renderError: pages.renderError,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Grant: 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: options.refreshTokenTtlSeconds ?? 24 * 3600,
      Session: 3600,
    },
  });

  // Runs before the provider's own middleware; counts once the token endpoint has answered.
  provider.use(async (ctx, next) => {
    const isToken = ctx.method === 'POST' && ctx.path === '/token';
    try {
      await next();
    } finally {
      if (isToken) log.push(describeTokenRequest(ctx));
    }
  });
  handler = provider.callback();

  let closed = false;

  const stop = async (): Promise<void> => {
    if (!server.listening) return;
    await new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  };

  return {
    issuer,
    port,

    tokenRequests(grantType?: string): number {
      if (grantType === undefined) return log.length;
      return log.filter((request) => request.grantType === grantType).length;
    },

    tokenRequestLog(): TokenRequest[] {
      return log.map((request) => ({ ...request }));
    },

    resetCounts(): void {
      log.length = 0;
    },

    async addClient(client: OidcClient): Promise<void> {
      if (staticIds.has(client.client_id) || store.get('Client', client.client_id)) {
        throw new Error(`client ${client.client_id} already exists`);
      }
      const metadata = clientMetadata(client);
      await provider.Client.validate(metadata);
      store.set('Client', metadata.client_id, { ...metadata });
    },

    stop,

    async start(): Promise<void> {
      if (closed) throw new Error('the OIDC server is closed');
      if (!server.listening) await listen(port);
    },

    async close(): Promise<void> {
      closed = true;
      await stop();
    },

    async revokeAllGrants(): Promise<number> {
      const grantIds = store.ids('Grant');
      for (const grantId of grantIds) {
        store.deleteByGrant(grantId);
        store.delete('Grant', grantId);
      }
      return grantIds.length;
    },

    async authorize(authorizationUrl: string, opts: AuthorizeOptions = {}) {
      const outcome = await browse(issuer, authorizationUrl, {
        login: opts.login ?? 'user',
        password: 'password',
      });
      if (outcome.kind !== 'left') {
        throw new Error(
          `authorization ended on a page (${outcome.status} ${outcome.url}), not a redirect: ` +
            outcome.body.slice(0, 500),
        );
      }
      if (!opts.followCallback) return { callbackUrl: outcome.url };
      const res = await fetch(outcome.url);
      return { callbackUrl: outcome.url, status: res.status, body: await res.text() };
    },

    async approveDevice(userCode: string, opts: { login?: string } = {}): Promise<void> {
      const outcome = await browse(issuer, `${issuer}/device`, {
        user_code: userCode,
        login: opts.login ?? 'user',
        password: 'password',
      });
      if (outcome.kind !== 'page' || !outcome.body.includes('id="harness-device-success"')) {
        const where = outcome.kind === 'left' ? `a redirect to ${outcome.url}` : outcome.body;
        throw new Error(`device approval did not succeed, it ended with ${where.slice(0, 500)}`);
      }
    },
  };
}
