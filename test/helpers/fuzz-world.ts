import { credentials, status } from '@grpc/grpc-js';
import { reportRequest } from '../../agent/report.js';
import { openWith, sharedKey } from '../../common/sealing.js';
import { AdminTokenServiceService } from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceService,
  OAuthClientServiceService,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { ProviderKeyServiceService } from '../../proto/gen/runkeys/v1/provider_keys.js';
import {
  AgentServiceClient,
  CreateRunRequest,
  Envelope,
  GetRunRequest,
  RunServiceService,
  RunState,
} from '../../proto/gen/runkeys/v1/runs.js';
import type { Targets } from '../server/isolation-cases.js';
import { AttachStream, agentKeys, attachRequest, bundleOf, keyOf, secretOf } from './attach.js';
import { bearer, type Rpc } from './rpc.js';
import {
  createCollection,
  type IssuedToken,
  issueToken,
  type ScopedRole,
  sampleValues,
  seedLayers,
  TOKEN_ENDPOINT,
} from './seed.js';
import type { StoreSnapshot } from './store.js';

/**
 * One collection with a resource of every kind, tokens of every role and a pending run, which
 * the fuzz tests aim their requests at. Fuzzed requests that succeed may delete or end any of
 * it; ensureWorld() puts back what is gone.
 */
export interface FuzzWorld {
  targets: Targets;
  tokens: Record<ScopedRole, IssuedToken>;
}

export const WORLD_COLLECTION = 'acme';
const ROLES: ScopedRole[] = ['admin', 'runner', 'viewer'];

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return status.OK;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

async function newRun(rpc: Rpc, root: string): Promise<string> {
  // Rpc.call knows the admin messages only: the run messages are built here.
  const res = await rpc.raw(
    RunServiceService.createRun,
    CreateRunRequest.fromPartial({
      collection: WORLD_COLLECTION,
      runtime: { provider: 'anthropic' },
    }),
    bearer(root),
  );
  return res.run!.id;
}

/**
 * A run whose agent attached and acknowledged its bundle, so the receipts list has a row (and
 * a page token to forge).
 */
async function acknowledgedRun(rpc: Rpc, root: string): Promise<void> {
  const created = await rpc.raw(
    RunServiceService.createRun,
    CreateRunRequest.fromPartial({
      collection: WORLD_COLLECTION,
      runtime: { provider: 'anthropic' },
    }),
    bearer(root),
  );
  const runId = created.run!.id;
  const keys = agentKeys();
  const agent = new AgentServiceClient(rpc.address, credentials.createInsecure());
  const stream = new AttachStream(
    agent,
    attachRequest({ runId, credential: secretOf(created.bootstrapSecret), keys }),
  );
  try {
    const shared = sharedKey(keyOf(created.serverPublicKey), keys.secretKey);
    const bundle = bundleOf(Envelope.decode(openWith(await stream.next(), shared)));
    const receipt = {
      version: bundle.version,
      digest: bundle.digest,
      applyTime: new Date(),
      envFileWritten: true,
      commandStarted: false,
    };
    const req = reportRequest(runId, { sequence: 1, receipts: [receipt], leaks: [] }, shared);
    await new Promise<void>((resolve, reject) =>
      agent.report(req, (err) => (err === null ? resolve() : reject(err))),
    );
  } finally {
    stream.cancel();
    agent.close();
  }
}

/** A token's first call stamps last_used_at; make it now, before any snapshot. */
async function stamp(rpc: Rpc, tokens: Record<ScopedRole, IssuedToken>): Promise<void> {
  for (const t of Object.values(tokens)) {
    await rpc.call(CollectionServiceService.listCollections, {}, t.secret);
  }
}

export async function seedWorld(rpc: Rpc, root: string): Promise<FuzzWorld> {
  const c = WORLD_COLLECTION;
  await createCollection(rpc, root, c);
  await seedLayers(rpc, root, c, sampleValues(c));
  const tokens = {
    admin: await issueToken(rpc, root, c, 'admin'),
    runner: await issueToken(rpc, root, c, 'runner'),
    viewer: await issueToken(rpc, root, c, 'viewer'),
  };
  await stamp(rpc, tokens);
  await acknowledgedRun(rpc, root);
  return {
    tokens,
    targets: {
      collection: c,
      env: 'PLAIN_URL',
      provider: 'anthropic',
      client: 'github',
      account: 'octocat',
      tokenId: tokens.admin.id,
      runId: await newRun(rpc, root),
    },
  };
}

/** Puts back whatever of the world a successful fuzzed call removed; updates `world` in place. */
export async function ensureWorld(rpc: Rpc, root: string, world: FuzzWorld): Promise<void> {
  const c = WORLD_COLLECTION;
  const collection = { collection: c };
  if ((await code(rpc.call(CollectionServiceService.getCollection, { name: c }, root))) !== 0) {
    Object.assign(world, await seedWorld(rpc, root));
    return;
  }
  const v = sampleValues(c);
  for (const [provider, credential] of Object.entries(v.providers)) {
    const got = await code(
      rpc.call(ProviderKeyServiceService.getProviderKey, { ...collection, provider }, root),
    );
    if (got === status.NOT_FOUND) {
      await rpc.call(
        ProviderKeyServiceService.createProviderKey,
        { ...collection, provider, credential },
        root,
      );
    }
  }
  for (const [name, value] of Object.entries(v.env)) {
    const got = await code(rpc.call(EnvVarServiceService.getEnvVar, { ...collection, name }, root));
    if (got === status.NOT_FOUND) {
      await rpc.call(
        EnvVarServiceService.createEnvVar,
        { ...collection, name, value, sensitive: !v.plain.includes(name) },
        root,
      );
    }
  }
  const client = v.oauthClient.name;
  const hasClient = await code(
    rpc.call(OAuthClientServiceService.getOAuthClient, { ...collection, name: client }, root),
  );
  if (hasClient === status.NOT_FOUND) {
    await rpc.call(
      OAuthClientServiceService.createOAuthClient,
      {
        ...collection,
        name: client,
        client: {
          tokenEndpoint: TOKEN_ENDPOINT,
          clientId: 'runkeys-test',
          clientSecret: v.oauthClient.secret,
          scopes: ['repo'],
          injection: { env: [{ name: 'GH_TOKEN', field: '' }] },
        },
      },
      root,
    );
  }
  const account = v.account.name;
  const hasAccount = await code(
    rpc.call(
      ConnectedAccountServiceService.getConnectedAccount,
      { ...collection, name: account },
      root,
    ),
  );
  if (hasAccount === status.NOT_FOUND) {
    await rpc.call(
      ConnectedAccountServiceService.createConnectedAccount,
      {
        ...collection,
        name: account,
        client,
        tokens: {
          accessToken: v.account.accessToken,
          refreshToken: v.account.refreshToken,
          expiresIn: 3600,
          scope: 'repo',
        },
      },
      root,
    );
  }
  let reissued = false;
  for (const role of ROLES) {
    const got = await code(
      rpc.call(AdminTokenServiceService.getAdminToken, { id: world.tokens[role].id }, root),
    );
    if (got === status.NOT_FOUND) {
      world.tokens[role] = await issueToken(rpc, root, c, role);
      reissued = true;
    }
  }
  if (reissued) await stamp(rpc, world.tokens);
  world.targets.tokenId = world.tokens.admin.id;
  const run = await rpc.raw(
    RunServiceService.getRun,
    GetRunRequest.fromPartial({ ...collection, id: world.targets.runId }),
    bearer(root),
  );
  if (run.run?.state !== RunState.RUN_STATE_PENDING) world.targets.runId = await newRun(rpc, root);
}

/**
 * A snapshot without what authentication itself writes (last_used_at is stamped at most once a
 * minute on any authenticated call, refused or not, by design) and without the running
 * servers' heartbeats (server_presence), which change on their own every few seconds.
 */
export function withoutBookkeeping(s: StoreSnapshot): StoreSnapshot {
  const out: StoreSnapshot = { ...s };
  delete out.server_presence;
  if (out.admin_tokens !== undefined) {
    out.admin_tokens = out.admin_tokens.map((row) => ({
      ...(row as Record<string, unknown>),
      last_used_at: null,
    }));
  }
  return out;
}
