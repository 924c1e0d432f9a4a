import * as oauth from 'oauth4webapi';
import { refreshAccountRequest } from '../../agent/refresh.js';
import { sharedKey } from '../../common/sealing.js';
import {
  type ConnectedAccount,
  type ConnectFlow,
  ConnectMethod,
  ConnectState,
  type TokenInjection,
} from '../../proto/gen/runkeys/v1/oauth.js';
import type {
  AgentServiceClient,
  Bundle,
  CreateRunResponse,
} from '../../proto/gen/runkeys/v1/runs.js';
import { AttachStream, agentKeys, attachRequest, keyOf, openEnvelope, secretOf } from './attach.js';
import { type OidcServer, startOidcServer } from './oidc.js';
import { controlPlane } from './runs.js';
import {
  adminClients,
  call,
  closeClients,
  type GrpcOutcome,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from './server.js';
import { waitFor } from './wait.js';

export const CLIENT_ID = 'runkeys-test';
export const CLIENT_SECRET = 'client-secret-canary-5b1f0e7c';
export const COLLECTION = 'acme';
/** A redirect URI of an app outside runkeys, for tokens that are then imported. */
export const APP_REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const DEFAULT_INJECTION: TokenInjection = {
  env: [{ name: 'GH_TOKEN', field: '' }],
  files: [],
};

export interface OAuthWorld {
  oidc: OidcServer;
  srv: TestServer;
  cp: ReturnType<typeof controlPlane>;
  admin: ReturnType<typeof adminClients>;
  /** Registers an OAuth client of the collection by issuer. */
  registerClient(
    name: string,
    opts?: { injection?: TokenInjection; provider?: string },
  ): Promise<void>;
  startConnect(account: string, client: string, device?: boolean): Promise<ConnectFlow>;
  /** Connects an account through the provider's own pages (authorization code + PKCE). */
  connect(account: string, client: string): Promise<void>;
  account(name: string): Promise<ConnectedAccount>;
  flow(id: string): Promise<ConnectFlow>;
  close(): Promise<void>;
}

/**
 * A real authorization server (oidc-provider) and a control plane with its HTTP listener, the
 * control plane's redirect URI registered at the provider, and a collection to connect into.
 */
export async function oauthWorld(
  opts: {
    accessTokenTtlSeconds?: number;
    refresh?: TestServerOptions['refresh'];
    refreshHooks?: TestServerOptions['refreshHooks'];
  } = {},
): Promise<OAuthWorld> {
  const oidc = await startOidcServer({
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 300,
    scopes: ['api'],
    clients: [],
  });
  const srv = await startTestServer({
    http: true,
    refresh: opts.refresh,
    refreshHooks: opts.refreshHooks,
  });
  await oidc.addClient({
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [srv.server.http!.redirectUri, APP_REDIRECT_URI],
  });
  const cp = controlPlane(srv.address, srv.rootToken);
  const admin = adminClients(srv.address);
  await cp.createCollection(COLLECTION);
  const token = srv.rootToken;

  const world: OAuthWorld = {
    oidc,
    srv,
    cp,
    admin,
    async registerClient(name, o = {}) {
      await call(
        admin.oauthClients.createOAuthClient.bind(admin.oauthClients),
        {
          collection: COLLECTION,
          name,
          client: {
            issuer: oidc.issuer,
            authorizationEndpoint: '',
            tokenEndpoint: '',
            deviceAuthorizationEndpoint: '',
            revocationEndpoint: '',
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            tokenEndpointAuthMethod: 'client_secret_basic',
            scopes: ['openid', 'api'],
            injection: o.injection ?? DEFAULT_INJECTION,
            provider: o.provider ?? '',
          },
        },
        token,
      );
    },
    async startConnect(account, client, device = false) {
      const res = await call(
        admin.accounts.startConnect.bind(admin.accounts),
        {
          collection: COLLECTION,
          name: account,
          client,
          method: device
            ? ConnectMethod.CONNECT_METHOD_DEVICE
            : ConnectMethod.CONNECT_METHOD_AUTHORIZATION_CODE,
        },
        token,
      );
      return res.flow!;
    },
    async connect(account, client) {
      const flow = await world.startConnect(account, client);
      const res = await oidc.authorize(flow.authorizationUrl, { followCallback: true });
      if (res.status !== 200) throw new Error(`callback answered ${res.status}: ${res.body}`);
      const done = await world.flow(flow.id);
      if (done.state !== ConnectState.CONNECT_STATE_CONNECTED) {
        throw new Error(`flow ended ${done.state}: ${done.error}`);
      }
    },
    async account(name) {
      const res = await call(
        admin.accounts.getConnectedAccount.bind(admin.accounts),
        { collection: COLLECTION, name },
        token,
      );
      return res.account!;
    },
    async flow(id) {
      const res = await call(
        admin.accounts.getConnectFlow.bind(admin.accounts),
        { collection: COLLECTION, id },
        token,
      );
      return res.flow!;
    },
    async close() {
      cp.close();
      closeClients(admin);
      await srv.close();
      await oidc.close();
    },
  };
  return world;
}

/** Waits for a connect flow to leave pending. */
export function flowSettled(
  world: OAuthWorld,
  id: string,
  timeoutMs: number,
): Promise<ConnectFlow> {
  return waitFor(
    async () => {
      const f = await world.flow(id);
      return f.state !== ConnectState.CONNECT_STATE_PENDING ? f : undefined;
    },
    timeoutMs,
    `connect flow ${id} to finish`,
  );
}

/** Sends RefreshAccount sealed with `shared`; resolves with the failure, or undefined. */
export function askRefresh(
  client: AgentServiceClient,
  runId: string,
  account: string,
  shared: Uint8Array,
  time?: Date,
): Promise<GrpcOutcome | undefined> {
  const req = refreshAccountRequest(runId, account, shared, time);
  return new Promise((resolve) => {
    client.refreshAccount(req, (err) =>
      resolve(err === null ? undefined : { code: err.code, details: err.details }),
    );
  });
}

/** A light in-process agent: attaches once and keeps every bundle it opens. */
export class LightAgent {
  readonly bundles: Bundle[] = [];
  readonly keys = agentKeys();
  private readonly stream: AttachStream;
  private stopped = false;
  readonly shared: Uint8Array;

  constructor(
    client: AgentServiceClient,
    readonly run: CreateRunResponse,
  ) {
    const serverKey = keyOf(run.serverPublicKey);
    this.shared = sharedKey(serverKey, this.keys.secretKey);
    this.stream = new AttachStream(
      client,
      attachRequest({
        runId: run.run!.id,
        credential: secretOf(run.bootstrapSecret),
        keys: this.keys,
      }),
    );
    void this.pump(serverKey);
  }

  private async pump(serverKey: Uint8Array): Promise<void> {
    while (!this.stopped) {
      try {
        const env = openEnvelope(await this.stream.next(60_000), serverKey, this.keys);
        if (env.body?.$case === 'bundle') this.bundles.push(env.body.value);
      } catch {
        return;
      }
    }
  }

  latest(): Bundle | undefined {
    return this.bundles.at(-1);
  }

  /** The value of a variable in the newest bundle. */
  value(name: string): string | undefined {
    return this.latest()?.entries.find((e) => e.name === name)?.value;
  }

  /** Asks for a refresh the way the agent does (agent/refresh.ts). */
  ask(client: AgentServiceClient, account: string, time?: Date): Promise<GrpcOutcome | undefined> {
    return askRefresh(client, this.run.run!.id, account, this.shared, time);
  }

  stop(): void {
    this.stopped = true;
    this.stream.cancel();
  }
}

/**
 * Tokens for a client got the way an app would, outside runkeys: authorization code + PKCE
 * through the provider's pages, exchanged with oauth4webapi. For `accounts import`.
 */
export async function codeFlowTokens(
  oidc: OidcServer,
  redirectUri: string,
): Promise<{ access_token: string; refresh_token: string; expires_in: number }> {
  const issuer = new URL(oidc.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, opts),
  );
  const client = { client_id: CLIENT_ID };
  const auth = oauth.ClientSecretBasic(CLIENT_SECRET);
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', CLIENT_ID);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', 'openid api');
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  const { callbackUrl } = await oidc.authorize(url.href);
  const params = oauth.validateAuthResponse(as, client, new URL(callbackUrl));
  const res = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    auth,
    params,
    redirectUri,
    verifier,
    opts,
  );
  const body = await oauth.processAuthorizationCodeResponse(as, client, res);
  return {
    access_token: body.access_token,
    refresh_token: body.refresh_token!,
    expires_in: body.expires_in ?? 0,
  };
}
