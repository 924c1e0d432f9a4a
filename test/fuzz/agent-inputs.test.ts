import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import { Session, type SessionEvent } from '../../agent/session.js';
import { prove } from '../../common/proof.js';
import {
  BundleError,
  type KeyPair,
  newKeyPair,
  openWith,
  type Sealed,
  sealFor,
  sealWith,
  sharedKey,
} from '../../common/sealing.js';
import {
  type AgentServiceClient,
  AgentServiceService,
  AttachRequest,
  type AttachResponse,
  type CreateRunResponse,
  Envelope,
  Layer,
  RefreshAccountRequest,
  RefreshAccountStatement,
  ReportRequest,
  ReportStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { newCredential } from '../../server/crypto/native.js';
import {
  type AgentKeys,
  AttachStream,
  agentKeys,
  attachRequest,
  keyOf,
  secretOf,
} from '../helpers/attach.js';
import {
  bytesArb,
  encodeExtras,
  fuzzParameters,
  fuzzString,
  int64Arb,
  type Outcome,
  sendBytes,
} from '../helpers/fuzz.js';
import { WORLD_COLLECTION, withoutBookkeeping } from '../helpers/fuzz-world.js';
import { Rpc } from '../helpers/rpc.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { createCollection, sampleValues, seedLayers } from '../helpers/seed.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type StoreSnapshot, snapshotStore } from '../helpers/store.js';

/**
 * Fuzzing of what an agent sends (Attach, RefreshAccount) and of what it opens (sealed
 * bundles). Attach and RefreshAccount take no bearer token, only proofs and sealed statements:
 * random run ids, keys, proofs, nonces and boxes, and proofs made with a real secret over the
 * wrong run, key or kind, must all be refused with a clear status that is neither INTERNAL nor
 * UNKNOWN, never attach, and leave every row of the store as it was. On the agent's side every
 * message that does not open, or opens to something that is not an Envelope for its run, must
 * come out as BundleError with its one message.
 */

const DEADLINE_MS = 8_000;
const DAY_MS = 24 * 3600 * 1000;
const BUNDLE_MESSAGE = 'bundle could not be opened';

interface PendingRun {
  id: string;
  secret: Uint8Array;
  serverKey: Uint8Array;
}

let srv: TestServer;
let rpc: Rpc;
let cp: ControlPlane;
let pending: PendingRun[];
let endedRun: string;
/** A run a well-behaved agent attached to; its stream stays open for the whole file. */
let attached: {
  id: string;
  keys: AgentKeys;
  shared: Uint8Array;
  stream: AttachStream;
  version: number;
  digest: string;
  fingerprint: string;
};
let before: StoreSnapshot;

const pendingRunOf = (res: CreateRunResponse): PendingRun => ({
  id: res.run!.id,
  secret: secretOf(res.bootstrapSecret),
  serverKey: keyOf(res.serverPublicKey),
});

const snapshot = () => withoutBookkeeping(snapshotStore(srv.dataDir));

beforeAll(async () => {
  srv = await startTestServer({
    refresh: { sweepMs: DAY_MS },
    // Reports are fuzzed here, not rate limited.
    limits: {
      adminWritesPerSecond: 1e6,
      adminWriteBurst: 1e6,
      reportsPerSecond: 1e6,
      reportBurst: 1e6,
    },
  });
  rpc = new Rpc(srv.address);
  cp = controlPlane(srv.address, srv.rootToken);
  await createCollection(rpc, srv.rootToken, WORLD_COLLECTION);
  await seedLayers(rpc, srv.rootToken, WORLD_COLLECTION, sampleValues(WORLD_COLLECTION));
  pending = [];
  for (let i = 0; i < 3; i++)
    pending.push(pendingRunOf(await cp.createRun(WORLD_COLLECTION, 'anthropic')));
  const ended = pendingRunOf(await cp.createRun(WORLD_COLLECTION, 'anthropic'));
  await cp.endRun(WORLD_COLLECTION, ended.id);
  endedRun = ended.id;

  const run = pendingRunOf(await cp.createRun(WORLD_COLLECTION, 'anthropic'));
  const keys = agentKeys();
  const stream = new AttachStream(
    cp.agent,
    attachRequest({ runId: run.id, credential: run.secret, keys }),
  );
  const first = Envelope.decode(
    openWith(await stream.next(), sharedKey(run.serverKey, keys.secretKey)),
  );
  if (first.body?.$case !== 'bundle') throw new Error('the first message is a bundle');
  const bundle = first.body.value;
  attached = {
    id: run.id,
    keys,
    shared: sharedKey(run.serverKey, keys.secretKey),
    stream,
    version: bundle.version,
    digest: bundle.digest,
    fingerprint: bundle.entries.find((e) => e.sensitive)!.fingerprint,
  };
  before = snapshot();
});

afterAll(async () => {
  attached?.stream.cancel();
  cp?.close();
  rpc?.close();
  await srv?.close();
});

/** Checks an outcome of an agent call that must be refused, then that the store is unchanged. */
function expectRefused(what: string, out: Outcome): void {
  const said = `${what} answered ${status[out.code]}: ${out.details}`;
  expect(out.ms, `${what} settles before its deadline`).toBeLessThan(DEADLINE_MS);
  expect(out.code, said).not.toBe(status.OK);
  expect([status.INTERNAL, status.UNKNOWN], said).not.toContain(out.code);
  expect(out.details.trim(), `${what}: a refusal says why`).not.toBe('');
  const after = snapshot();
  if (!isDeepStrictEqual(after, before))
    expect(after, `${said}\nchanged the store`).toEqual(before);
}

/** One Attach: how it ended, and how many messages came before (an attach sends one at once). */
function attachOnce(
  client: AgentServiceClient,
  req: AttachRequest,
): Promise<Outcome & { messages: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let messages = 0;
    const call = client.attach(req, undefined, { deadline: started + DEADLINE_MS });
    call.on('data', (_msg: AttachResponse) => {
      messages++;
      // An attach that succeeded: end it rather than wait for the deadline.
      call.cancel();
    });
    call.on('error', (_err: ServiceError) => {});
    call.on('status', (s: { code: number; details: string }) =>
      resolve({ code: s.code, details: s.details, messages, ms: Date.now() - started }),
    );
  });
}

const hex16 = fc.stringMatching(/^[0-9a-f]{16}$/).map((h) => `run_${h}`);
const keyBytes = fc.oneof(
  { weight: 2, arbitrary: bytesArb(64) },
  { weight: 3, arbitrary: bytesArb(32, 32) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(32)) },
);

describe('Attach with fuzzed inputs', () => {
  const runIdArb = () =>
    fc.oneof(
      fuzzString(),
      hex16,
      fc.constantFrom(...pending.map((r) => r.id), attached.id, endedRun),
    );

  it('refuses random run ids, keys and proofs, and never attaches', async () => {
    const arb = fc.record({
      runId: runIdArb(),
      key: keyBytes,
      bootstrapProof: fc.oneof(bytesArb(0), bytesArb(128), bytesArb(64, 64)),
      resumeProof: fc.oneof(bytesArb(0), bytesArb(128)),
      heldVersion: int64Arb,
    });
    await fc.assert(
      fc.asyncProperty(arb, async (r) => {
        const req = AttachRequest.fromPartial({
          runId: r.runId,
          agentPublicKey: r.key,
          bootstrapProof: r.bootstrapProof,
          resumeProof: r.resumeProof,
          heldVersion: r.heldVersion,
        });
        const out = await attachOnce(cp.agent, req);
        expect(out.messages, 'a random attach received a message').toBe(0);
        expectRefused('Attach', out);
      }),
      fuzzParameters(60),
    );
  });

  it('refuses a proof made with a real bootstrap secret over the wrong run, key or kind', async () => {
    const arb = fc
      .record({
        sent: fc.nat(pending.length - 1),
        secretOf: fc.nat(pending.length - 1),
        provenRun: fc.oneof(fc.constant<string | undefined>(undefined), runIdArb()),
        provenKind: fc.constantFrom<'bootstrap' | 'resume'>('bootstrap', 'resume'),
        field: fc.constantFrom<'bootstrap' | 'resume'>('bootstrap', 'resume'),
        otherKey: fc.boolean(),
        heldVersion: int64Arb,
      })
      // Only forgeries: at least one thing differs from what the run's own agent would send.
      .filter(
        (f) =>
          f.secretOf !== f.sent ||
          (f.provenRun !== undefined && f.provenRun !== pending[f.sent]!.id) ||
          f.provenKind !== 'bootstrap' ||
          f.field !== 'bootstrap' ||
          f.otherKey,
      );
    await fc.assert(
      fc.asyncProperty(arb, async (f) => {
        const run = pending[f.sent]!;
        const keys = agentKeys();
        const provedFor = f.otherKey ? agentKeys() : keys;
        const proof = Buffer.from(
          prove(
            pending[f.secretOf]!.secret,
            f.provenKind,
            f.provenRun ?? run.id,
            provedFor.publicKey,
          ),
        );
        const req = AttachRequest.fromPartial({
          runId: run.id,
          agentPublicKey: Buffer.from(keys.publicKey),
          bootstrapProof: f.field === 'bootstrap' ? proof : Buffer.alloc(0),
          resumeProof: f.field === 'resume' ? proof : Buffer.alloc(0),
          heldVersion: f.heldVersion,
        });
        const out = await attachOnce(cp.agent, req);
        expect(out.messages, 'a forged proof received a message').toBe(0);
        expectRefused('Attach', out);
      }),
      fuzzParameters(30),
    );
  });

  it('still attaches the runs it refused for others, with their own secret and key', async () => {
    const run = pending[0]!;
    const keys = agentKeys();
    const stream = new AttachStream(
      cp.agent,
      attachRequest({ runId: run.id, credential: run.secret, keys }),
    );
    try {
      await stream.next();
    } finally {
      stream.cancel();
    }
    // That attach was meant to change the store: it is the baseline from here on.
    before = snapshot();
  });
});

describe('RefreshAccount with fuzzed inputs', () => {
  const send = (req: RefreshAccountRequest, extra = new Uint8Array()) =>
    sendBytes(
      rpc,
      AgentServiceService.refreshAccount.path,
      Buffer.concat([RefreshAccountRequest.encode(req).finish(), extra]),
      undefined,
      DEADLINE_MS,
    );

  /** Well outside the 60 s window a statement must fall in. */
  const staleDate = fc.oneof(
    fc.date({ max: new Date(Date.now() - 5 * 60_000), noInvalidDate: true }),
    fc.date({ min: new Date(Date.now() + 5 * 60_000), noInvalidDate: true }),
  );

  it('refuses random run ids, nonces and boxes, and sealed garbage', async () => {
    const runIdArb = fc.oneof(
      { weight: 1, arbitrary: fuzzString() },
      { weight: 1, arbitrary: hex16 },
      { weight: 3, arbitrary: fc.constantFrom(attached.id, endedRun, pending[1]!.id) },
    );
    const body = fc.oneof(
      fc.record({ nonce: fc.oneof(bytesArb(40), bytesArb(24, 24)), box: bytesArb(200) }),
      // Opens under the run's key, but is not a statement.
      bytesArb(200).map((plain) => sealWith(plain, attached.shared)),
      // A statement that opens, but names another run or falls outside the window.
      fc
        .record({
          runId: fc.oneof(fuzzString(), hex16, fc.constant(attached.id)),
          account: fc.oneof(fuzzString(), fc.constant('octocat')),
          time: fc.oneof(staleDate, fc.constant(undefined)),
          wrongRun: fc.boolean(),
        })
        .map((s) => {
          const runId = s.wrongRun && s.runId === attached.id ? `${s.runId}x` : s.runId;
          const time = runId === attached.id ? (s.time ?? undefined) : (s.time ?? new Date());
          const plain = RefreshAccountStatement.encode({
            runId,
            account: s.account,
            time,
          }).finish();
          return sealWith(plain, attached.shared);
        }),
    );
    await fc.assert(
      fc.asyncProperty(runIdArb, body, async (runId, sealed) => {
        const out = await send(
          RefreshAccountRequest.fromPartial({
            runId,
            nonce: Buffer.from(sealed.nonce),
            box: Buffer.from(sealed.box),
          }),
        );
        expectRefused('RefreshAccount', out);
      }),
      fuzzParameters(60),
    );
  });
});

describe('Report with fuzzed inputs', () => {
  const send = (req: ReportRequest) =>
    sendBytes(
      rpc,
      AgentServiceService.report.path,
      Buffer.from(ReportRequest.encode(req).finish()),
      undefined,
      DEADLINE_MS,
    );
  const sealedRequest = (runId: string, sealed: Sealed) =>
    ReportRequest.fromPartial({
      runId,
      nonce: Buffer.from(sealed.nonce),
      box: Buffer.from(sealed.box),
    });

  it('refuses random run ids, nonces and boxes, sealed garbage and stale statements', async () => {
    const runIdArb = fc.oneof(
      { weight: 1, arbitrary: fuzzString() },
      { weight: 1, arbitrary: hex16 },
      { weight: 3, arbitrary: fc.constantFrom(attached.id, endedRun, pending[1]!.id) },
    );
    const body = fc.oneof(
      fc.record({ nonce: fc.oneof(bytesArb(40), bytesArb(24, 24)), box: bytesArb(200) }),
      bytesArb(200).map((plain) => sealWith(plain, attached.shared)),
      fc
        .record({
          time: fc.oneof(
            fc.date({ max: new Date(Date.now() - 5 * 60_000), noInvalidDate: true }),
            fc.date({ min: new Date(Date.now() + 5 * 60_000), noInvalidDate: true }),
            fc.constant(undefined),
          ),
          sequence: int64Arb,
        })
        .map(({ time, sequence }) =>
          sealWith(
            ReportStatement.encode({
              runId: attached.id,
              time,
              sequence,
              receipts: [],
              leaks: [],
            }).finish(),
            attached.shared,
          ),
        ),
    );
    await fc.assert(
      fc.asyncProperty(runIdArb, body, async (runId, sealed) => {
        expectRefused('Report', await send(sealedRequest(runId, sealed)));
      }),
      fuzzParameters(60),
    );
  });

  it('answers any contents of a recent sealed report with OK or a clear refusal', async () => {
    const receiptArb = fc.record({
      version: fc.oneof(int64Arb, fc.constant(attached.version)),
      digest: fc.oneof(fuzzString(), fc.constant(attached.digest)),
      applyTime: fc.oneof(fc.date(), fc.constant(undefined), fc.constant(new Date())),
      envFileWritten: fc.boolean(),
      commandStarted: fc.boolean(),
    });
    const leakArb = fc.record({
      name: fc.oneof(fuzzString(), fc.constant('API_TOKEN')),
      stream: fc.oneof(fuzzString(), fc.constantFrom('stdout', 'stderr', 'trajectory')),
      count: int64Arb,
      fingerprint: fc.oneof(fuzzString(), fc.constant(attached.fingerprint)),
      firstTime: fc.constant(undefined),
      lastTime: fc.constant(undefined),
    });
    let sequence = 1_000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(receiptArb, { maxLength: 3 }),
        fc.array(leakArb, { maxLength: 3 }),
        fc.boolean(),
        async (receipts, leaks, fresh) => {
          if (fresh) sequence += 1;
          const plain = ReportStatement.encode({
            runId: attached.id,
            time: new Date(),
            sequence,
            receipts,
            leaks,
          }).finish();
          const out = await send(sealedRequest(attached.id, sealWith(plain, attached.shared)));
          if (out.code === status.OK) {
            before = snapshot();
            return;
          }
          expect(out.code, out.details).toBe(status.INVALID_ARGUMENT);
          expectRefused('Report', out);
        },
      ),
      fuzzParameters(80),
    );
  });
});

describe('the bundle opener', () => {
  it('throws BundleError for any nonce and box under any key', () => {
    fc.assert(
      fc.property(bytesArb(40), bytesArb(200), bytesArb(32), (nonce, box, key) => {
        const shared =
          key.length === 32 ? key : Buffer.concat([key, Buffer.alloc(32)]).subarray(0, 32);
        expect(() => openWith({ nonce, box }, shared)).toThrow(BundleError);
        try {
          openWith({ nonce, box }, shared);
        } catch (err) {
          expect((err as Error).message).toBe(BUNDLE_MESSAGE);
        }
      }),
      fuzzParameters(300),
    );
  });

  it('makes a shared key of 32 bytes, or throws BundleError, for any public key', () => {
    const secret = agentKeys().secretKey;
    fc.assert(
      fc.property(keyBytes, (pub) => {
        try {
          expect(sharedKey(pub, secret)).toHaveLength(32);
        } catch (err) {
          expect(err).toBeInstanceOf(BundleError);
          expect((err as Error).message).toBe(BUNDLE_MESSAGE);
        }
      }),
      fuzzParameters(200),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The agent's receive path

/**
 * What the tests reach of a Session beyond its public API: its key pair, which a bundle is
 * sealed to, and receive(), which opens and handles one sealed message exactly as a message
 * from the stream is handled.
 */
interface SessionInternals {
  keys: KeyPair;
  receive(sealed: Sealed): boolean;
  client: { close(): void };
}

const RUN_ID = 'run_0123456789abcdef';

function agentConfigFor(addr: string, serverKey: Uint8Array): AgentConfig {
  return {
    addr,
    runId: RUN_ID,
    bootstrapSecret: randomBytes(32),
    serverKey,
    envFile: `${tmpdir()}/runkeys-fuzz-unused.env`,
    workDir: tmpdir(),
    homeDir: undefined,
    waitMs: 2_000,
    onRevoke: 'leave',
    maxOfflineMs: 60_000,
    maxOfflineExplicit: true,
    statusFile: `${tmpdir()}/runkeys-fuzz-unused-status.json`,
    command: [],
  };
}

const silent = pino({ level: 'silent' });

/** A session that never dials out; its messages are handed to receive() by the test. */
function offlineSession(server: KeyPair) {
  const events: SessionEvent[] = [];
  const session = new Session(agentConfigFor('127.0.0.1:9', server.publicKey), silent, (e) =>
    events.push(e),
  );
  const internals = session as unknown as SessionInternals;
  expect(typeof internals.receive, 'Session.receive() is what these tests drive').toBe('function');
  return {
    events,
    /** Seals plaintext from the server to this session's key. */
    seal: (plain: Uint8Array) => sealFor(plain, internals.keys.publicKey, server.secretKey),
    receive: (sealed: Sealed) => internals.receive(sealed),
    close: () => {
      session.stop();
      internals.client.close();
    },
  };
}

/** Runs `f`; returns the error it threw, or undefined. */
function thrown(f: () => unknown): unknown {
  try {
    f();
    return undefined;
  } catch (err) {
    return err;
  }
}

function expectBundleError(err: unknown): void {
  expect(err).toBeInstanceOf(BundleError);
  expect((err as Error).message).toBe(BUNDLE_MESSAGE);
}

/** A sealed message's plaintext: an Envelope of some kind, or not one at all. */
const credentialText = fc.oneof(
  fc.constant(''),
  fc.constant(null).map(() => newCredential().credential.toString('base64url')),
  fuzzString(),
);
const bundleArb = fc.record({
  version: int64Arb,
  entries: fc.array(
    fc.record({
      name: fuzzString(),
      value: fuzzString(),
      layer: fc.constantFrom(Layer.LAYER_ENV, Layer.LAYER_PROVIDER, Layer.LAYER_ACCOUNT, 99),
      sensitive: fc.boolean(),
    }),
    { maxLength: 3 },
  ),
  unset: fc.array(fuzzString(), { maxLength: 2 }),
  resumeCredential: credentialText,
});
const envelopeArb = fc.record({
  runId: fc.oneof(
    { weight: 3, arbitrary: fc.constant(RUN_ID) },
    { weight: 1, arbitrary: fuzzString() },
  ),
  body: fc.oneof(
    bundleArb.map((b) => ({
      $case: 'bundle' as const,
      value: Envelope.fromPartial({ body: { $case: 'bundle', value: b } }).body!.value,
    })),
    fuzzString().map((reason) => ({ $case: 'revocation' as const, value: { reason } })),
    fc.constant(undefined),
  ),
});
const plaintextArb = fc.oneof(
  // Random bytes: nearly never an Envelope, and never one for this run.
  { weight: 2, arbitrary: bytesArb(300) },
  // An Envelope, whole or with garbage after it (which may or may not still decode).
  {
    weight: 3,
    arbitrary: fc
      .tuple(envelopeArb, fc.oneof(bytesArb(0), bytesArb(8)))
      .map(([e, tail]) => Buffer.concat([Envelope.encode(e as Envelope).finish(), tail])),
  },
);

/** What receive() must do with a plaintext that opened, by its own reading of it. */
function mustRefuse(plain: Uint8Array): boolean {
  let envelope: Envelope;
  try {
    envelope = Envelope.decode(plain);
  } catch {
    return true;
  }
  if (envelope.runId !== RUN_ID) return true;
  const body = envelope.body;
  return (
    body?.$case === 'bundle' &&
    body.value.resumeCredential !== '' &&
    !/^[A-Za-z0-9_-]{43}$/.test(body.value.resumeCredential.trim())
  );
}

describe("the agent's receive path", () => {
  const server = newKeyPair();

  it('throws only BundleError for sealed messages that do not open', () => {
    const s = offlineSession(server);
    try {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.record({ nonce: bytesArb(40), box: bytesArb(200) }),
            // Sealed by another key than the one the agent pinned.
            bytesArb(100).map((p) => sealFor(p, newKeyPair().publicKey, newKeyPair().secretKey)),
          ),
          (sealed) => expectBundleError(thrown(() => s.receive(sealed))),
        ),
        fuzzParameters(200),
      );
    } finally {
      s.close();
    }
  });

  it('takes a sealed plaintext as an Envelope for its run, or throws BundleError', () => {
    fc.assert(
      fc.property(plaintextArb, (plain) => {
        const s = offlineSession(server);
        try {
          const err = thrown(() => s.receive(s.seal(plain)));
          if (mustRefuse(plain)) expectBundleError(err);
          else if (err !== undefined) expectBundleError(err);
        } finally {
          s.close();
        }
      }),
      fuzzParameters(200),
    );
  });

  it('ends a session fed garbage on its stream with the one refusal, not a crash', async () => {
    // A stand-in control plane whose Attach sends one fuzzed sealed message and waits.
    const queue: Sealed[] = [];
    const fake = new Server();
    fake.addService(AgentServiceService, {
      attach: (call: ServerWritableStream<AttachRequest, AttachResponse>) => {
        const next = queue.shift();
        if (next === undefined) {
          call.emit('error', { code: status.UNAVAILABLE, details: 'no message queued' });
          return;
        }
        call.write({
          message: {
            $case: 'sealed',
            value: { nonce: Buffer.from(next.nonce), box: Buffer.from(next.box) },
          },
        });
      },
      refreshAccount: (_call: unknown, cb: (err: { code: number; details: string }) => void) =>
        cb({ code: status.UNIMPLEMENTED, details: 'not here' }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      fake.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err === null ? resolve(p) : reject(err),
      ),
    );
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.record({ nonce: bytesArb(40), box: bytesArb(120) }).map((r) => ({ raw: r })),
            bytesArb(200)
              .filter((p) => mustRefuse(p))
              .map((p) => ({ plain: p })),
            fc.constant(null).map(() => ({ wrongKey: true as const })),
          ),
          async (payload) => {
            const events: SessionEvent[] = [];
            const session = new Session(
              agentConfigFor(`127.0.0.1:${port}`, server.publicKey),
              silent,
              (e) => events.push(e),
            );
            const agentKey = (session as unknown as SessionInternals).keys.publicKey;
            if ('raw' in payload) queue.push(payload.raw);
            else if ('plain' in payload)
              queue.push(sealFor(payload.plain, agentKey, server.secretKey));
            else
              queue.push(
                sealFor(
                  Envelope.encode({ runId: RUN_ID, body: undefined }).finish(),
                  agentKey,
                  newKeyPair().secretKey,
                ),
              );
            await session.run();
            session.close();
            const last = events.at(-1);
            expect(last).toEqual({
              kind: 'fatal',
              exitCode: 77,
              message: 'bundle could not be opened: check RUNKEYS_SERVER_KEY',
            });
          },
        ),
        fuzzParameters(12),
      );
    } finally {
      fake.forceShutdown();
    }
  });
});

describe('known bugs (reported; flip each it to it once fixed)', () => {
  /** The outcome of an Attach sent as these exact bytes. */
  function attachBytes(bytes: Uint8Array): Promise<Outcome & { messages: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
      let messages = 0;
      const call = rpc.client.makeServerStreamRequest(
        AgentServiceService.attach.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: started + DEADLINE_MS },
      );
      call.on('data', () => {
        messages++;
        call.cancel();
      });
      call.on('error', () => {});
      call.on('status', (s: { code: number; details: string }) =>
        resolve({ code: s.code, details: s.details, messages, ms: Date.now() - started }),
      );
    });
  }

  // The generated decoder throws on an int64 past 2^53; grpc-js answers INTERNAL "Error
  // deserializing request" before the handler runs (as for the admin requests).
  it('an Attach with held_version past 2^53 is refused, not INTERNAL', async () => {
    const req = AttachRequest.encode(AttachRequest.fromPartial({ runId: pending[2]!.id })).finish();
    const extra = encodeExtras([{ kind: 'int64', number: 5, value: 2n ** 60n }]);
    const out = await attachBytes(Buffer.concat([req, extra]));
    expect(out.messages).toBe(0);
    expectRefused('Attach', out);
  });

  it('a RefreshAccount body that is not a protobuf message is refused, not INTERNAL', async () => {
    const out = await sendBytes(
      rpc,
      AgentServiceService.refreshAccount.path,
      Uint8Array.of(0x0a, 0x05),
      undefined,
      DEADLINE_MS,
    );
    expectRefused('RefreshAccount', out);
  });

  // server/runs/refresh-ask.ts: a Timestamp past the range of a Date decodes to an Invalid
  // Date, so `at` is NaN and `Math.abs(now - NaN) > 60_000` is false: the freshness window
  // (the replay guard) lets the statement through, where a merely stale one is refused.
  it('a refresh statement whose time is past the range of a Date is refused', async () => {
    try {
      const plain = Buffer.concat([
        RefreshAccountStatement.encode({ runId: attached.id, account: 'octocat' }).finish(),
        encodeExtras([{ kind: 'timestamp', number: 3, seconds: 9_000_000_000_000n, nanos: 0 }]),
      ]);
      const sealed = sealWith(plain, attached.shared);
      const out = await sendBytes(
        rpc,
        AgentServiceService.refreshAccount.path,
        RefreshAccountRequest.encode({
          runId: attached.id,
          nonce: Buffer.from(sealed.nonce),
          box: Buffer.from(sealed.box),
        }).finish(),
        undefined,
        DEADLINE_MS,
      );
      expect(out.code, `answered ${status[out.code]}: ${out.details}`).toBe(status.UNAUTHENTICATED);
    } finally {
      // An accepted ask may refresh the account: later tests start from the store as it is.
      before = snapshot();
    }
  });
});
