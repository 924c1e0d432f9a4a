import { Metadata, type status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import { type DeepPartial, Rpc, type UnaryMethod } from './rpc.js';
import {
  createCollection,
  type IssuedToken,
  issueToken,
  type ScopedRole,
  sampleValues,
  seedLayers,
} from './seed.js';
import { failure, startTestServer, type TestServer } from './server.js';
import { snapshotStore } from './store.js';

/** What the table's requests may refer to once the server is up. */
export interface TableContext {
  rootTokenId: string;
  /** A next_page_token of the env var list of collection acme. */
  envPageToken: string;
}

/** Who sends a request: a token of collection acme, the root token, none, or a literal bearer. */
export type Sender = 'root' | ScopedRole | 'none' | { bearer: string };

export interface MalformedCase {
  /** Completes "refuses ..." in the test name. */
  what: string;
  call: { method: UnaryMethod<unknown, unknown>; request: (ctx: TableContext) => object };
  as?: Sender;
  code: status;
  details: string;
}

/** Pairs a method with a request of its own type, then erases the types for the table. */
export function req<Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: DeepPartial<Req> | ((ctx: TableContext) => DeepPartial<Req>),
): MalformedCase['call'] {
  const build =
    typeof request === 'function'
      ? (request as (ctx: TableContext) => DeepPartial<Req>)
      : () => request;
  return {
    method: method as UnaryMethod<unknown, unknown>,
    request: (ctx) => build(ctx) as object,
  };
}

/**
 * Runs a table of malformed or unauthorised requests against one server whose collection acme
 * holds every layer: each must fail with its exact status and message, and afterwards every row
 * of the store (audit events included) must be as it was before the first one.
 */
export function describeMalformedTable(title: string, cases: readonly MalformedCase[]): void {
  let srv: TestServer;
  let rpc: Rpc;
  let tokens: Record<ScopedRole, IssuedToken>;
  let ctx: TableContext;
  let before: ReturnType<typeof snapshotStore>;

  beforeAll(async () => {
    srv = await startTestServer();
    rpc = new Rpc(srv.address);
    await createCollection(rpc, srv.rootToken, 'acme');
    await seedLayers(rpc, srv.rootToken, 'acme', sampleValues('acme'));
    tokens = {
      admin: await issueToken(rpc, srv.rootToken, 'acme', 'admin'),
      runner: await issueToken(rpc, srv.rootToken, 'acme', 'runner'),
      viewer: await issueToken(rpc, srv.rootToken, 'acme', 'viewer'),
    };
    const page = await rpc.call(
      EnvVarServiceService.listEnvVars,
      { collection: 'acme', pageSize: 1 },
      srv.rootToken,
    );
    ctx = {
      rootTokenId: `tok_${srv.rootToken.split('_')[1]}`,
      envPageToken: page.nextPageToken,
    };
    // A token's first call stamps last_used_at; make it before the snapshot.
    for (const t of Object.values(tokens)) {
      await rpc.call(CollectionServiceService.listCollections, {}, t.secret);
    }
    before = snapshotStore(srv.dataDir);
  });

  afterAll(async () => {
    rpc.close();
    await srv.close();
  });

  function metadataOf(sender: Sender): Metadata {
    const md = new Metadata();
    let token: string | undefined;
    if (sender === 'root') token = srv.rootToken;
    else if (typeof sender === 'object') token = sender.bearer;
    else if (sender !== 'none') token = tokens[sender].secret;
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    return md;
  }

  describe(title, () => {
    it.each(cases.map((c) => [c.what, c] as const))('refuses %s', async (_what, c) => {
      const p = rpc.call(c.call.method, c.call.request(ctx), metadataOf(c.as ?? 'root'));
      expect(await failure(p)).toEqual({ code: c.code, details: c.details });
    });

    it('leaves every row of the store as it was, with no audit event', () => {
      expect(snapshotStore(srv.dataDir)).toEqual(before);
    });
  });
}
