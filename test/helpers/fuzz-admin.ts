import { isDeepStrictEqual } from 'node:util';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASES } from '../server/isolation-cases.js';
import {
  benignExtrasArb,
  echoedSecrets,
  encodeExtras,
  fuzzParameters,
  fuzzString,
  loadSchema,
  mutateArb,
  type Outcome,
  pageTokenArb,
  requestStrings,
  type Schema,
  sendBytes,
} from './fuzz.js';
import { ensureWorld, type FuzzWorld, seedWorld, withoutBookkeeping } from './fuzz-world.js';
import { bearer, Rpc } from './rpc.js';
import { startTestServer, type TestServer } from './server.js';
import { type GeneratedMethod, generatedServices } from './services.js';
import { type StoreSnapshot, snapshotStore } from './store.js';

/**
 * The admin fuzz, for one store (SQLite, PostgreSQL): every unary method of every admin
 * service (the generated service definitions are scanned, so a new method is fuzzed without a
 * change here) gets requests that start from its valid request in isolation-cases.ts and have
 * fields dropped, replaced with random values of their proto type, or mutated in turn; some
 * carry extra wire fields (unknown fields, wrong wire types, non-UTF-8 strings, over-wide
 * varints). Every call must settle with a status other than INTERNAL or UNKNOWN; a refusal
 * must say why without repeating a secret of the request; a refused call must leave every row
 * of the store as it was.
 */

export const DEADLINE_MS = 8_000;
const DAY_MS = 24 * 3600 * 1000;

export type Sender = 'root' | 'admin' | 'runner' | 'viewer' | 'stranger';
const senderArb = fc.constantFrom<Sender>(
  'root',
  'root',
  'root',
  'root',
  'root',
  'admin',
  'runner',
  'viewer',
  'stranger',
);
const STRANGER = 'rk_0000000000000000_not-a-real-secret';

export interface AdminMethod {
  /** Service/method, e.g. EnvVarService/createEnvVar. */
  label: string;
  /** Fully qualified service name. */
  service: string;
  m: GeneratedMethod;
}

export interface Store {
  /** A snapshot of every row, without what authentication writes on any call. */
  snapshot(): Promise<StoreSnapshot>;
  close(): Promise<void>;
}

export interface AdminFuzzOptions {
  /** Names the store in the test names. */
  store: string;
  runs: number;
  /** Starts a server on a fresh store. */
  start(): Promise<{ srv: TestServer; store: Store }>;
  /**
   * Inputs of a known, reported bug that the random runs step around (fast-check's pre), so
   * that the rest of the domain keeps its coverage; each has a regression case of its own.
   */
  knownBug?(label: string, message: Record<string, unknown>): boolean;
}

/** What tests registered beside the fuzz reach, once the server is up. */
export interface AdminFuzzContext {
  schema: Schema;
  methods: AdminMethod[];
  srv: TestServer;
  rpc: Rpc;
  baseRequest(service: string, key: string): Record<string, unknown>;
  requestType(m: GeneratedMethod): string;
  /** The checks every outcome must pass, then the store check for a refused call. */
  judge(m: GeneratedMethod, label: string, message: object, out: Outcome): Promise<void>;
}

export async function adminMethods(): Promise<AdminMethod[]> {
  return (await generatedServices())
    .filter((s) => s.name !== 'runkeys.v1.AgentService')
    .flatMap((s) =>
      s.methods
        .filter((m) => !m.requestStream && !m.responseStream)
        .map((m) => ({
          label: `${s.name.slice('runkeys.v1.'.length)}/${m.key}`,
          service: s.name,
          m,
        })),
    );
}

/** A server on SQLite in its own data dir. */
export async function startOnSqlite(): Promise<{ srv: TestServer; store: Store }> {
  // No refresh sweep: it would write to the store between a call and its snapshot.
  const srv = await startTestServer({ refresh: { sweepMs: DAY_MS } });
  return {
    srv,
    store: {
      snapshot: async () => withoutBookkeeping(snapshotStore(srv.dataDir)),
      close: async () => {},
    },
  };
}

/** A server on a PostgreSQL database (freshly made by the caller). */
export async function startOnPostgres(url: string): Promise<{ srv: TestServer; store: Store }> {
  const srv = await startTestServer({ databaseUrl: url, refresh: { sweepMs: DAY_MS } });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const query = await snapshotQuery(client);
  return {
    srv,
    store: {
      snapshot: async () =>
        withoutBookkeeping((await client.query<{ s: StoreSnapshot }>(query)).rows[0]!.s),
      close: () => client.end(),
    },
  };
}

/**
 * One query that returns every row of every table of the public schema as JSON, each table's
 * rows in the order of all its columns: a snapshot in one round trip.
 */
async function snapshotQuery(client: pg.Client): Promise<string> {
  const columns = await client.query<{ table_name: string; column_name: string }>(
    'SELECT c.table_name, c.column_name FROM information_schema.columns c ' +
      'JOIN information_schema.tables t USING (table_schema, table_name) ' +
      "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' " +
      'ORDER BY c.table_name, c.ordinal_position',
  );
  const byTable = new Map<string, string[]>();
  for (const r of columns.rows) {
    byTable.set(r.table_name, [...(byTable.get(r.table_name) ?? []), `t."${r.column_name}"`]);
  }
  const parts = [...byTable].map(
    ([table, cols]) =>
      `'${table}', (SELECT coalesce(json_agg(t ORDER BY ${cols.join(', ')}), '[]') ` +
      `FROM "${table}" t)`,
  );
  return `SELECT json_build_object(${parts.join(', ')}) AS s`;
}

/** `methods` from adminMethods(), awaited at the top of the test file (it.each needs them). */
export function describeAdminFuzz(
  methods: AdminMethod[],
  options: AdminFuzzOptions,
  more?: (ctx: () => AdminFuzzContext) => void,
): void {
  const schema = loadSchema();
  let srv: TestServer;
  let store: Store;
  let rpc: Rpc;
  let world: FuzzWorld;
  let before: StoreSnapshot;
  /** The list scope of each list method's own page tokens, which forged tokens reuse. */
  const scopes = new Map<string, string>();
  /** Outcome codes per method, for FUZZ_VERBOSE. */
  const tally = new Map<string, Map<number, number>>();

  const tokenOf = (sender: Sender): string => {
    if (sender === 'root') return srv.rootToken;
    if (sender === 'stranger') return STRANGER;
    return world.tokens[sender].secret;
  };

  const baseRequest = (service: string, key: string): Record<string, unknown> => {
    const entry = CASES[service]?.[key];
    // A method with no case yet is fuzzed from the empty request.
    if (entry === undefined || 'exempt' in entry) return {};
    return entry.request(world.targets) as Record<string, unknown>;
  };

  const requestType = (m: GeneratedMethod): string => {
    const type = schema.requests.get(m.path);
    if (type === undefined) throw new Error(`no request type for ${m.path}`);
    return type;
  };

  const count = (label: string, code: number): void => {
    const codes = tally.get(label) ?? new Map<number, number>();
    codes.set(code, (codes.get(code) ?? 0) + 1);
    tally.set(label, codes);
  };

  async function judge(
    m: GeneratedMethod,
    label: string,
    message: object,
    out: Outcome,
  ): Promise<void> {
    count(label, out.code);
    const what = `${label} answered ${status[out.code]}: ${out.details}`;
    expect(out.ms, `${label} settles before its deadline`).toBeLessThan(DEADLINE_MS);
    expect([status.INTERNAL, status.UNKNOWN], what).not.toContain(out.code);
    if (out.code !== status.OK) {
      expect(out.details.trim(), `${label}: a refusal says why`).not.toBe('');
      const strings = requestStrings(schema, requestType(m), message as Record<string, unknown>);
      expect(echoedSecrets(out.details, strings), `${what}\nrepeats a secret`).toEqual([]);
    }
    let after = await store.snapshot();
    if (out.code !== status.OK) {
      // Deep comparison only on a difference: the matcher's diff names the row that changed.
      if (!isDeepStrictEqual(after, before)) {
        expect(after, `${what}\nand changed the store`).toEqual(before);
      }
    } else if (/^(delete|end)/.test(m.key)) {
      await ensureWorld(rpc, srv.rootToken, world);
      after = await store.snapshot();
    }
    before = after;
  }

  beforeAll(async () => {
    ({ srv, store } = await options.start());
    rpc = new Rpc(srv.address);
    world = await seedWorld(rpc, srv.rootToken);
    for (const x of methods) {
      const fields = schema.messages.get(requestType(x.m)) ?? [];
      if (!fields.some((f) => f.name === 'pageToken')) continue;
      const request = x.m.build({ ...baseRequest(x.service, x.m.key), pageSize: 1 });
      const res = await rpc.raw(x.m, request, bearer(srv.rootToken));
      const next = (res as { nextPageToken?: string }).nextPageToken ?? '';
      const body = JSON.parse(Buffer.from(next, 'base64url').toString('utf8') || '{}') as {
        s?: string;
      };
      if (body.s !== undefined) scopes.set(x.label, body.s);
    }
    before = await store.snapshot();
  });

  afterAll(async () => {
    if (process.env.FUZZ_VERBOSE !== undefined) {
      for (const [label, codes] of tally) {
        const parts = [...codes].map(([c, n]) => `${status[c]}=${n}`).join(' ');
        console.log(`[${options.store}] ${label}: ${parts}`);
      }
    }
    rpc?.close();
    await store?.close();
    await srv?.close();
  });

  describe(`fuzzed admin requests on ${options.store}`, () => {
    it('finds the admin methods in the generated services', () => {
      expect(methods.length).toBeGreaterThanOrEqual(30);
    });

    it.each(methods.map((x) => [x.label, x] as const))(
      '%s: settles with a clear status and leaves the store as it was when refused',
      async (label, x) => {
        const type = requestType(x.m);
        const arb = fc.record({
          // Built per run: the world's ids change when a run deletes what they name.
          request: fc.constant(null).chain(() =>
            mutateArb(schema, type, baseRequest(x.service, x.m.key), {
              pageToken: pageTokenArb([...scopes.values()]),
            }),
          ),
          sender: senderArb,
          extras: benignExtrasArb(schema, type),
        });
        await fc.assert(
          fc.asyncProperty(arb, async ({ request, sender, extras }) => {
            const message = x.m.build(request) as Record<string, unknown>;
            fc.pre(options.knownBug?.(label, message) !== true);
            const bytes = Buffer.concat([x.m.requestSerialize(message), encodeExtras(extras)]);
            const out = await sendBytes(rpc, x.m.path, bytes, tokenOf(sender), DEADLINE_MS);
            await judge(x.m, label, message, out);
          }),
          fuzzParameters(options.runs),
        );
      },
    );
  });

  const lists = methods.filter((x) =>
    (schema.messages.get(schema.requests.get(x.m.path) ?? '') ?? []).some(
      (f) => f.name === 'pageToken',
    ),
  );

  describe(`forged page tokens on ${options.store}`, () => {
    it.each(lists.map((x) => [x.label, x] as const))(
      '%s: a page token of its own list with any last key is answered, never INTERNAL',
      async (label, x) => {
        const scope = scopes.get(label);
        if (scope === undefined) throw new Error(`${label} issued no page token to read`);
        const arb = fc.record({
          a: fc.oneof(
            fuzzString(),
            fc.stringMatching(/^-?[0-9]{1,25}(\.[0-9])?$/),
            fc.constantFrom('zz', '0', '-1', '1e400', 'acme', 'tok_0', 'run_0'),
          ),
          pageSize: fc.integer({ min: 0, max: 1000 }),
        });
        await fc.assert(
          fc.asyncProperty(arb, async ({ a, pageSize }) => {
            const pageToken = Buffer.from(JSON.stringify({ s: scope, a })).toString('base64url');
            const base = baseRequest(x.service, x.m.key);
            const message = x.m.build({ ...base, pageSize, pageToken }) as Record<string, unknown>;
            fc.pre(options.knownBug?.(label, message) !== true);
            const bytes = x.m.requestSerialize(message);
            const out = await sendBytes(rpc, x.m.path, bytes, srv.rootToken, DEADLINE_MS);
            await judge(x.m, label, message, out);
          }),
          fuzzParameters(Math.ceil(options.runs / 2)),
        );
      },
    );
  });

  /**
   * Found by the property above on PostgreSQL before server/validate/pagination.ts checked the
   * key (each answered INTERNAL): { seed: -479454011, path: "0" }, { seed: -1593114004,
   * path: "1" }, { seed: 2133990190, path: "1" }, { seed: 705998696, path: "4" }.
   */
  describe(`forged page tokens on ${options.store}: regressions`, () => {
    const PAGE_TOKEN_REFUSED =
      '"page_token" must be the next_page_token of this same list; start again without it';
    it.each([
      ['AdminTokenService/listAdminTokens', '\u{6bf93}\u{2aef2}\0\udbff', 621],
      ['AuditService/listAuditEvents', '3122710367.9', 4],
      ['EnvVarService/listEnvVars', 'ref\0pJbg}y', 5],
      ['RunService/listRuns', '\0', 4],
    ])('%s refuses the last key %j', async (label, a, pageSize) => {
      const x = methods.find((y) => y.label === label)!;
      const pageToken = Buffer.from(JSON.stringify({ s: scopes.get(label), a })).toString(
        'base64url',
      );
      const message = x.m.build({ ...baseRequest(x.service, x.m.key), pageSize, pageToken });
      const out = await sendBytes(
        rpc,
        x.m.path,
        x.m.requestSerialize(message),
        srv.rootToken,
        DEADLINE_MS,
      );
      expect({ code: out.code, details: out.details }).toEqual({
        code: status.INVALID_ARGUMENT,
        details: PAGE_TOKEN_REFUSED,
      });
    });
  });

  more?.(() => ({ schema, methods, srv, rpc, baseRequest, requestType, judge }));
}
