import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import { bearer, Rpc } from '../helpers/rpc.js';
import {
  createCollection,
  type IssuedToken,
  issueToken,
  type ScopedRole,
  sampleValues,
  seedLayers,
} from '../helpers/seed.js';
import { failure, startTestServer, type TestServer } from '../helpers/server.js';
import { type GeneratedMethod, generatedServices } from '../helpers/services.js';
import { type StoreSnapshot, snapshotStore } from '../helpers/store.js';
import {
  CASES,
  type Caller,
  caseOf,
  type Expectation,
  type MethodCase,
  READS,
  RUN_WRITES,
  type Targets,
  WRITES,
} from './isolation-cases.js';

const services = await generatedServices();
const methods = services.flatMap((s) =>
  s.methods.map((m) => ({ service: s.name, short: s.name.slice('runkeys.v1.'.length), m })),
);
const ROLES: ScopedRole[] = ['admin', 'runner', 'viewer'];

let srv: TestServer;
let rpc: Rpc;
const tokens = {} as Record<'alpha' | 'beta', Record<ScopedRole, IssuedToken>>;
const targets = {} as Record<'alpha' | 'beta', Targets>;
let before: StoreSnapshot;

function method(qualified: string): GeneratedMethod {
  const found = methods.find((x) => `${x.short}/${x.m.key}` === qualified);
  if (found === undefined) throw new Error(`no generated method ${qualified}`);
  return found.m;
}

function send(m: GeneratedMethod, request: object, token: string): Promise<unknown> {
  return rpc.raw(m, m.build(request), bearer(token));
}

async function expectOutcome(p: Promise<unknown>, e: Expectation, c: Caller, t: Targets) {
  if ('check' in e) {
    e.check(await p, c);
    return;
  }
  expect(await failure(p)).toEqual({ code: e.code, details: e.details(c, t) });
}

async function startRun(collection: string): Promise<string> {
  const res = (await send(
    method('RunService/createRun'),
    { collection, runtime: { provider: 'anthropic' } },
    srv.rootToken,
  )) as { run: { id: string } };
  return res.run.id;
}

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
  for (const name of ['alpha', 'beta'] as const) {
    await createCollection(rpc, srv.rootToken, name);
    await seedLayers(rpc, srv.rootToken, name, sampleValues(name));
    tokens[name] = {
      admin: await issueToken(rpc, srv.rootToken, name, 'admin'),
      runner: await issueToken(rpc, srv.rootToken, name, 'runner'),
      viewer: await issueToken(rpc, srv.rootToken, name, 'viewer'),
    };
    targets[name] = {
      collection: name,
      env: 'PLAIN_URL',
      provider: 'anthropic',
      client: 'github',
      account: 'octocat',
      tokenId: tokens[name].admin.id,
      runId: await startRun(name),
    };
  }
  // A token's first call stamps last_used_at; do it now so the snapshot sees only refusals.
  for (const t of Object.values(tokens.alpha)) {
    await rpc.call(CollectionServiceService.listCollections, {}, t.secret);
  }
  before = snapshotStore(srv.dataDir);
});

afterAll(async () => {
  rpc.close();
  await srv.close();
});

describe('isolation between collections', () => {
  it('has a case, or a stated exemption, for every method of every generated service', () => {
    const missing = methods.filter((x) => CASES[x.service]?.[x.m.key] === undefined);
    expect(missing.map((x) => `${x.service}/${x.m.key}`)).toEqual([]);
    // The admin services alone have 30 methods: the directory scan must have found them.
    expect(methods.length).toBeGreaterThanOrEqual(30);
  });

  const probes = methods.filter((x) => !('exempt' in (CASES[x.service]?.[x.m.key] ?? {})));

  describe.each(ROLES)('the %s token of collection alpha', (role) => {
    it.each(probes.map((x) => [`${x.short}/${x.m.key}`, x] as const))(
      'cannot use %s on collection beta',
      async (_name, x) => {
        const c = caseOf(`${x.short}/${x.m.key}`);
        const caller: Caller = { role, tokenId: tokens.alpha[role].id };
        const p = send(x.m, c.request(targets.beta), tokens.alpha[role].secret);
        await expectOutcome(p, c.other, caller, targets.beta);
      },
    );

    const mixed = probes.filter((x) => {
      const entry = CASES[x.service]?.[x.m.key];
      return entry !== undefined && 'mixed' in entry;
    });
    it.each(mixed.map((x) => [`${x.short}/${x.m.key}`, x] as const))(
      'cannot reach a resource of beta through %s by naming its own collection',
      async (_name, x) => {
        const c = caseOf(`${x.short}/${x.m.key}`) as Required<MethodCase>;
        const request = c.mixed(targets.alpha, targets.beta);
        const f = await failure(send(x.m, request, tokens.alpha[role].secret));
        expect([status.NOT_FOUND, status.PERMISSION_DENIED]).toContain(f.code);
        expect(f.details).not.toContain('beta');
      },
    );
  });

  it('lists only the tokens of its own collection to an admin', async () => {
    const list = method('AdminTokenService/listAdminTokens');
    const res = (await send(list, {}, tokens.alpha.admin.secret)) as {
      adminTokens: { collection: string }[];
    };
    expect(new Set(res.adminTokens.map((t) => t.collection))).toEqual(new Set(['alpha']));
  });

  it('refuses an audit listing without a collection to a scoped token', async () => {
    const list = method('AuditService/listAuditEvents');
    const f = await failure(send(list, {}, tokens.alpha.admin.secret));
    expect(f).toEqual({
      code: status.INVALID_ARGUMENT,
      details: '"collection" is required unless the caller holds a root token',
    });
  });
});

describe('roles inside their own collection', () => {
  const refuse = (qualified: string, role: ScopedRole, details: string) => async () => {
    const c = caseOf(qualified);
    const f = await failure(
      send(method(qualified), c.request(targets.alpha), tokens.alpha[role].secret),
    );
    expect(f).toEqual({ code: status.PERMISSION_DENIED, details });
  };

  it.each(WRITES)('refuses %s to a viewer', (q) =>
    refuse(q, 'viewer', 'a viewer token cannot change collection "alpha"')(),
  );

  it.each(WRITES)('refuses %s to a runner', (q) =>
    refuse(q, 'runner', 'a runner token cannot change collection "alpha"')(),
  );

  it.each(READS)('refuses %s to a runner', (q) =>
    refuse(q, 'runner', 'a runner token cannot read collection "alpha"')(),
  );

  it.each(RUN_WRITES)('refuses %s to a viewer', (q) =>
    refuse(q, 'viewer', 'a viewer token cannot manage runs of collection "alpha"')(),
  );

  it.each(ROLES)('refuses creating and deleting collections to the %s token', async (role) => {
    const secret = tokens.alpha[role].secret;
    const create = method('CollectionService/createCollection');
    const drop = method('CollectionService/deleteCollection');
    expect(await failure(send(create, { name: 'gamma' }, secret))).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'only a root token can create collections',
    });
    expect(await failure(send(drop, { name: 'alpha' }, secret))).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'only a root token can delete collections',
    });
  });

  it('refuses a root token to an admin', async () => {
    const create = method('AdminTokenService/createAdminToken');
    const f = await failure(send(create, { role: 1 }, tokens.alpha.admin.secret));
    expect(f).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'only a root token can create root tokens',
    });
  });
});

describe('after every refused call', () => {
  it('left every row of the store as it was, audit events included', () => {
    expect(snapshotStore(srv.dataDir)).toEqual(before);
  });

  it('still lets a viewer read metadata of its own collection, without any value', async () => {
    const res = await rpc.call(
      EnvVarServiceService.listEnvVars,
      { collection: 'alpha' },
      tokens.alpha.viewer.secret,
    );
    expect(res.envVars.map((v) => [v.name, v.value])).toEqual([
      ['PLAIN_URL', ''],
      ['SECRET_ALPHA', ''],
    ]);
  });

  it('still lets an admin change its own collection', async () => {
    const res = await rpc.call(
      EnvVarServiceService.updateEnvVar,
      { collection: 'alpha', name: 'PLAIN_URL', value: 'https://new.example', sensitive: false },
      tokens.alpha.admin.secret,
    );
    expect(res.envVar?.value).toBe('https://new.example');
  });
});
