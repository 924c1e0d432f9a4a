import { AdminTokenServiceService, Role } from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceService,
  OAuthClientServiceService,
} from '../../proto/gen/runkeys/v1/oauth.js';
import {
  type ProviderCredential,
  ProviderKeyServiceService,
} from '../../proto/gen/runkeys/v1/provider_keys.js';
import type { DeepPartial, Rpc } from './rpc.js';

export type ScopedRole = 'admin' | 'runner' | 'viewer';

const WIRE_ROLE: Record<ScopedRole, Role> = {
  admin: Role.ROLE_ADMIN,
  runner: Role.ROLE_RUNNER,
  viewer: Role.ROLE_VIEWER,
};

export interface IssuedToken {
  id: string;
  secret: string;
}

export async function createCollection(rpc: Rpc, root: string, name: string): Promise<void> {
  await rpc.call(CollectionServiceService.createCollection, { name }, root);
}

export async function issueToken(
  rpc: Rpc,
  root: string,
  collection: string,
  role: ScopedRole,
): Promise<IssuedToken> {
  const res = await rpc.call(
    AdminTokenServiceService.createAdminToken,
    { collection, role: WIRE_ROLE[role], description: `${role} of ${collection}` },
    root,
  );
  return { id: res.adminToken!.id, secret: res.secret };
}

/** One value for every kind of field the three layers hold. */
export interface LayerValues {
  providers: Record<string, DeepPartial<ProviderCredential>>;
  /** Name to value; sensitive unless named in `plain`. */
  env: Record<string, string>;
  plain: readonly string[];
  oauthClient: { name: string; secret: string };
  account: { name: string; accessToken: string; refreshToken: string };
}

/** Example values that pass validation, for tests that only need the layers filled. */
export function sampleValues(tag: string): LayerValues {
  return {
    providers: {
      anthropic: { apiKey: `sk-ant-${tag}-0123456789` },
      bedrock: { region: 'us-east-1', bearerToken: `bedrock-${tag}-0123456789` },
    },
    env: { [`SECRET_${tag.toUpperCase()}`]: `secret-${tag}`, PLAIN_URL: 'https://svc.example' },
    plain: ['PLAIN_URL'],
    oauthClient: { name: 'github', secret: `client-secret-${tag}` },
    account: { name: 'octocat', accessToken: `gho_${tag}_access`, refreshToken: `ghr_${tag}_r` },
  };
}

export const TOKEN_ENDPOINT = 'https://auth.example/oauth/token';

/** Fills every layer of a collection through the API. */
export async function seedLayers(
  rpc: Rpc,
  token: string,
  collection: string,
  v: LayerValues,
): Promise<void> {
  for (const [provider, credential] of Object.entries(v.providers)) {
    await rpc.call(
      ProviderKeyServiceService.createProviderKey,
      { collection, provider, credential },
      token,
    );
  }
  for (const [name, value] of Object.entries(v.env)) {
    await rpc.call(
      EnvVarServiceService.createEnvVar,
      { collection, name, value, sensitive: !v.plain.includes(name) },
      token,
    );
  }
  await rpc.call(
    OAuthClientServiceService.createOAuthClient,
    {
      collection,
      name: v.oauthClient.name,
      client: {
        tokenEndpoint: TOKEN_ENDPOINT,
        clientId: 'runkeys-test',
        clientSecret: v.oauthClient.secret,
        scopes: ['repo'],
        injection: { env: [{ name: 'GH_TOKEN', field: '' }] },
      },
    },
    token,
  );
  await rpc.call(
    ConnectedAccountServiceService.createConnectedAccount,
    {
      collection,
      name: v.account.name,
      client: v.oauthClient.name,
      tokens: {
        accessToken: v.account.accessToken,
        refreshToken: v.account.refreshToken,
        expiresIn: 3600,
        scope: 'repo',
      },
    },
    token,
  );
}
