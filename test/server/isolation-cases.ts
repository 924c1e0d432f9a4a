import { status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { Role } from '../../proto/gen/runkeys/v1/admin.js';
import { TOKEN_ENDPOINT } from '../helpers/seed.js';

/**
 * What a token scoped to one collection gets from each method when it aims at another
 * collection. The isolation test fails for a generated method that has no entry here.
 */

/** The names of one collection's resources, as the seed made them. */
export interface Targets {
  collection: string;
  env: string;
  provider: string;
  client: string;
  account: string;
  /** An admin token of the collection. */
  tokenId: string;
  runId: string;
}

export interface Caller {
  role: 'admin' | 'runner' | 'viewer';
  tokenId: string;
}

export type Expectation =
  | { code: status; details: (caller: Caller, target: Targets) => string }
  | { check: (response: unknown, caller: Caller) => void };

export interface MethodCase {
  /** A valid request aimed at the collection (and resources) of `t`. */
  request(t: Targets): object;
  /** The outcome for a token of another collection. */
  other: Expectation;
  /** A request naming the caller's own collection and another collection's resource id. */
  mixed?(own: Targets, other: Targets): object;
}

export type Entry = MethodCase | { exempt: string };

const scoped: Expectation = {
  code: status.PERMISSION_DENIED,
  details: (c) => `token ${c.tokenId} is scoped to another collection`,
};
const rootOnly = (what: string): Expectation => ({
  code: status.PERMISSION_DENIED,
  details: () => `only a root token can ${what}`,
});
const hiddenToken: Expectation = {
  code: status.NOT_FOUND,
  details: (_c, t) => `admin token "${t.tokenId}" not found`,
};

const at = (t: Targets) => ({ collection: t.collection });
const client = {
  tokenEndpoint: TOKEN_ENDPOINT,
  clientId: 'intruder',
  injection: { env: [{ name: 'GH_TOKEN' }] },
};

export const CASES: Record<string, Record<string, Entry>> = {
  'runkeys.v1.CollectionService': {
    createCollection: {
      request: (t) => ({ name: t.collection }),
      other: rootOnly('create collections'),
    },
    getCollection: { request: (t) => ({ name: t.collection }), other: scoped },
    listCollections: {
      request: () => ({}),
      other: {
        check: (res) => {
          const names = (res as { collections: { name: string }[] }).collections.map((c) => c.name);
          expect(names).toEqual(['alpha']);
        },
      },
    },
    updateCollection: {
      request: (t) => ({ name: t.collection, description: 'mine', maxOfflineSeconds: 3600 }),
      other: scoped,
    },
    deleteCollection: {
      request: (t) => ({ name: t.collection }),
      other: rootOnly('delete collections'),
    },
  },
  'runkeys.v1.ProviderKeyService': {
    createProviderKey: {
      request: (t) => ({
        ...at(t),
        provider: 'openai',
        credential: { apiKey: 'sk-intruder-000001' },
      }),
      other: scoped,
    },
    getProviderKey: { request: (t) => ({ ...at(t), provider: t.provider }), other: scoped },
    listProviderKeys: { request: at, other: scoped },
    updateProviderKey: {
      request: (t) => ({
        ...at(t),
        provider: t.provider,
        credential: { apiKey: 'sk-intruder-02' },
      }),
      other: scoped,
    },
    deleteProviderKey: { request: (t) => ({ ...at(t), provider: t.provider }), other: scoped },
  },
  'runkeys.v1.EnvVarService': {
    createEnvVar: { request: (t) => ({ ...at(t), name: 'INTRUDER', value: 'x' }), other: scoped },
    getEnvVar: { request: (t) => ({ ...at(t), name: t.env }), other: scoped },
    listEnvVars: { request: at, other: scoped },
    updateEnvVar: { request: (t) => ({ ...at(t), name: t.env, value: 'changed' }), other: scoped },
    deleteEnvVar: { request: (t) => ({ ...at(t), name: t.env }), other: scoped },
  },
  'runkeys.v1.OAuthClientService': {
    createOAuthClient: { request: (t) => ({ ...at(t), name: 'intruder', client }), other: scoped },
    getOAuthClient: { request: (t) => ({ ...at(t), name: t.client }), other: scoped },
    listOAuthClients: { request: at, other: scoped },
    updateOAuthClient: { request: (t) => ({ ...at(t), name: t.client, client }), other: scoped },
    deleteOAuthClient: { request: (t) => ({ ...at(t), name: t.client }), other: scoped },
  },
  'runkeys.v1.ConnectedAccountService': {
    createConnectedAccount: {
      request: (t) => ({
        ...at(t),
        name: 'intruder',
        client: t.client,
        tokens: { accessToken: 'gho_intruder' },
      }),
      other: scoped,
    },
    getConnectedAccount: { request: (t) => ({ ...at(t), name: t.account }), other: scoped },
    listConnectedAccounts: { request: at, other: scoped },
    deleteConnectedAccount: { request: (t) => ({ ...at(t), name: t.account }), other: scoped },
    startConnect: {
      request: (t) => ({ ...at(t), name: 'intruder', client: t.client, method: 1 }),
      other: scoped,
    },
    getConnectFlow: { request: (t) => ({ ...at(t), id: `cf_${'0'.repeat(20)}` }), other: scoped },
    refreshConnectedAccount: { request: (t) => ({ ...at(t), name: t.account }), other: scoped },
  },
  'runkeys.v1.AdminTokenService': {
    createAdminToken: { request: (t) => ({ ...at(t), role: Role.ROLE_ADMIN }), other: scoped },
    getAdminToken: { request: (t) => ({ id: t.tokenId }), other: hiddenToken },
    listAdminTokens: { request: at, other: scoped },
    updateAdminToken: {
      request: (t) => ({ id: t.tokenId, description: 'mine' }),
      other: hiddenToken,
    },
    deleteAdminToken: { request: (t) => ({ id: t.tokenId }), other: hiddenToken },
  },
  'runkeys.v1.AuditService': {
    listAuditEvents: { request: at, other: scoped },
  },
  'runkeys.v1.RunService': {
    createRun: { request: (t) => ({ ...at(t), runtime: { provider: t.provider } }), other: scoped },
    getRun: {
      request: (t) => ({ ...at(t), id: t.runId }),
      other: scoped,
      mixed: (own, other) => ({ ...at(own), id: other.runId }),
    },
    listRuns: { request: at, other: scoped },
    endRun: {
      request: (t) => ({ ...at(t), id: t.runId }),
      other: scoped,
      mixed: (own, other) => ({ ...at(own), id: other.runId }),
    },
    listReceipts: {
      request: at,
      other: scoped,
      mixed: (own, other) => ({ ...at(own), runId: other.runId }),
    },
  },
  'runkeys.v1.AgentService': {
    attach: {
      exempt:
        'takes no bearer token: the agent proves it holds the run bootstrap secret, which the ' +
        'run protocol tests cover',
    },
    refreshAccount: {
      exempt:
        'takes no bearer token: the request is sealed with the agent key the run is bound to, ' +
        'which test/oauth/refresh-ask.test.ts covers',
    },
    report: {
      exempt:
        'takes no bearer token: the request is sealed with the agent key the run is bound to, ' +
        'which test/runs/reports.test.ts covers',
    },
  },
};

/** Methods that change a collection: viewer and runner tokens are refused them. */
export const WRITES = [
  'ProviderKeyService/createProviderKey',
  'ProviderKeyService/updateProviderKey',
  'ProviderKeyService/deleteProviderKey',
  'EnvVarService/createEnvVar',
  'EnvVarService/updateEnvVar',
  'EnvVarService/deleteEnvVar',
  'OAuthClientService/createOAuthClient',
  'OAuthClientService/updateOAuthClient',
  'OAuthClientService/deleteOAuthClient',
  'ConnectedAccountService/createConnectedAccount',
  'ConnectedAccountService/deleteConnectedAccount',
  'ConnectedAccountService/startConnect',
  'ConnectedAccountService/getConnectFlow',
  'ConnectedAccountService/refreshConnectedAccount',
  'CollectionService/updateCollection',
  'AdminTokenService/createAdminToken',
];

/** Methods that read a collection's layers or history: runner tokens are refused them. */
export const READS = [
  'ProviderKeyService/getProviderKey',
  'ProviderKeyService/listProviderKeys',
  'EnvVarService/getEnvVar',
  'EnvVarService/listEnvVars',
  'OAuthClientService/getOAuthClient',
  'OAuthClientService/listOAuthClients',
  'ConnectedAccountService/getConnectedAccount',
  'ConnectedAccountService/listConnectedAccounts',
  'CollectionService/getCollection',
  'AuditService/listAuditEvents',
];

/** Methods that start or stop runs: viewer tokens are refused them. */
export const RUN_WRITES = ['RunService/createRun', 'RunService/endRun'];

export function caseOf(qualified: string): MethodCase {
  const [service, method] = qualified.split('/') as [string, string];
  const entry = CASES[`runkeys.v1.${service}`]?.[method];
  if (entry === undefined || 'exempt' in entry) throw new Error(`no case for ${qualified}`);
  return entry;
}
