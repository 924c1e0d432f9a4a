import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { AgentConfig } from '../../agent/config.js';
import { newKeyPair, openWith, sealFor, sharedKey } from '../../common/sealing.js';
import {
  type AgentServiceServer,
  AgentServiceService,
  type AttachRequest,
  type AttachResponse,
  type Bundle,
  Envelope,
  type RefreshAccountRequest,
  type RefreshAccountResponse,
  RefreshAccountStatement,
  type ReportRequest,
  type ReportResponse,
  ReportStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { newCredential } from '../../server/crypto/native.js';

// A stand-in control plane for runAgent() tests (no server/ code). It takes any proof, first
// attach or resume, answers every attach with the bundle it holds (and a fresh resume
// credential), and can be stopped and started again on the same port with the same key. It can
// also play a man in the middle who holds the agent's streams open and forges heartbeats.

export interface StandInOptions {
  runId: string;
  bundle: Bundle;
  /** Send a sealed heartbeat this often on each stream; none when unset. */
  heartbeatMs?: number;
}

/**
 * What a man in the middle sends in place of a heartbeat:
 * - foreign-key: a heartbeat envelope sealed with a key pair of his own;
 * - garbage: random bytes as the nonce and the box;
 * - empty: an AttachResponse with no message at all.
 */
export type Forgery = 'foreign-key' | 'garbage' | 'empty';

export interface StandIn {
  addr: string;
  serverKey: Uint8Array;
  /** Every attach request, first attach and resumes, in order. */
  attaches: AttachRequest[];
  statements: RefreshAccountStatement[];
  /** Every report the agent sent, opened. */
  reports: ReportStatement[];
  /** Holds a new bundle and sends it on the open stream. */
  update(bundle: Bundle): void;
  /**
   * From now on plays a man in the middle: attaches get no bundle, and every heartbeat (on the
   * heartbeatMs beat) is forged.
   */
  intercept(forgery: Forgery): void;
  revoke(): void;
  /** Ends the server and every stream at once, as a crash would. */
  stop(): void;
  /** Serves again on the same port. */
  start(): Promise<void>;
}

export async function standIn(opts: StandInOptions): Promise<StandIn> {
  const keys = newKeyPair();
  const attaches: AttachRequest[] = [];
  const statements: RefreshAccountStatement[] = [];
  const reports: ReportStatement[] = [];
  let bundle = opts.bundle;
  let agentKey: Uint8Array | undefined;
  let stream: ServerWritableStream<AttachRequest, AttachResponse> | undefined;
  let server: Server | undefined;
  let port = 0;
  const beats = new Set<NodeJS.Timeout>();
  let forgery: Forgery | undefined;
  const intruder = newKeyPair();

  const sealed = (envelope: Envelope, secretKey = keys.secretKey): AttachResponse => {
    const box = sealFor(Envelope.encode(envelope).finish(), agentKey!, secretKey);
    return {
      message: {
        $case: 'sealed',
        value: { nonce: Buffer.from(box.nonce), box: Buffer.from(box.box) },
      },
    };
  };
  const send = (envelope: Envelope) => stream?.write(sealed(envelope));
  const sendBundle = (b: Bundle) =>
    send({ runId: opts.runId, body: { $case: 'bundle', value: b } });
  const heartbeat = (): Envelope => ({
    runId: opts.runId,
    body: { $case: 'heartbeat', value: { time: new Date() } },
  });
  const beat = (): AttachResponse => {
    switch (forgery) {
      case undefined:
        return sealed(heartbeat());
      case 'foreign-key':
        return sealed(heartbeat(), intruder.secretKey);
      case 'garbage':
        return {
          message: { $case: 'sealed', value: { nonce: randomBytes(24), box: randomBytes(64) } },
        };
      case 'empty':
        return {};
    }
  };

  const impl: AgentServiceServer = {
    attach(call) {
      attaches.push(call.request);
      stream = call;
      agentKey = call.request.agentPublicKey;
      const resumeCredential = newCredential().credential.toString('base64url');
      if (forgery === undefined) sendBundle({ ...bundle, resumeCredential });
      if (opts.heartbeatMs !== undefined) {
        const timer = setInterval(() => call.write(beat()), opts.heartbeatMs);
        beats.add(timer);
        call.on('cancelled', () => {
          clearInterval(timer);
          beats.delete(timer);
        });
      }
    },
    refreshAccount(
      call: ServerUnaryCall<RefreshAccountRequest, RefreshAccountResponse>,
      callback: sendUnaryData<RefreshAccountResponse>,
    ) {
      const opened = openWith(call.request, sharedKey(agentKey!, keys.secretKey));
      statements.push(RefreshAccountStatement.decode(opened));
      callback(null, {});
    },
    report(
      call: ServerUnaryCall<ReportRequest, ReportResponse>,
      callback: sendUnaryData<ReportResponse>,
    ) {
      const opened = openWith(call.request, sharedKey(agentKey!, keys.secretKey));
      reports.push(ReportStatement.decode(opened));
      callback(null, {});
    },
  };

  const start = async () => {
    const s = new Server();
    s.addService(AgentServiceService, impl);
    port = await new Promise<number>((resolve, reject) =>
      s.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err === null ? resolve(p) : reject(err),
      ),
    );
    server = s;
  };
  await start();

  return {
    addr: `127.0.0.1:${port}`,
    serverKey: keys.publicKey,
    attaches,
    statements,
    reports,
    update(b) {
      bundle = b;
      sendBundle(b);
    },
    intercept(f) {
      forgery = f;
    },
    revoke: () =>
      send({ runId: opts.runId, body: { $case: 'revocation', value: { reason: 'ended' } } }),
    stop() {
      for (const beat of beats) clearInterval(beat);
      beats.clear();
      server?.forceShutdown();
      server = undefined;
      stream = undefined;
    },
    start,
  };
}

/** The agent's settings for a test against a stand-in, with files under `work` and `home`. */
export function configFor(
  cp: StandIn,
  runId: string,
  dirs: { work: string; home: string },
  extra: Partial<AgentConfig> = {},
): AgentConfig {
  return {
    addr: cp.addr,
    runId,
    bootstrapSecret: newCredential().credential,
    serverKey: cp.serverKey,
    envFile: join(dirs.work, 'env', '.env'),
    workDir: dirs.work,
    homeDir: dirs.home,
    waitMs: 5000,
    onRevoke: 'leave',
    maxOfflineMs: 3_600_000,
    maxOfflineExplicit: false,
    statusFile: join(dirs.work, 'env', 'status.json'),
    command: [],
    ...extra,
  };
}
