import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { AgentConfig } from '../../agent/config.js';
import { newCredential } from '../../common/proof.js';
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
} from '../../proto/gen/runkeys/v1/runs.js';

// A stand-in control plane for runAgent() tests (no server/ code). It takes any proof, first
// attach or resume, answers every attach with the bundle it holds (and a fresh resume
// credential), and can be stopped and started again on the same port with the same key.

export interface StandInOptions {
  runId: string;
  bundle: Bundle;
  /** Send an unsealed heartbeat this often on each stream; none when unset. */
  heartbeatMs?: number;
}

export interface StandIn {
  addr: string;
  serverKey: Uint8Array;
  /** Every attach request, first attach and resumes, in order. */
  attaches: AttachRequest[];
  statements: RefreshAccountStatement[];
  /** Holds a new bundle and sends it on the open stream. */
  update(bundle: Bundle): void;
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
  let bundle = opts.bundle;
  let agentKey: Uint8Array | undefined;
  let stream: ServerWritableStream<AttachRequest, AttachResponse> | undefined;
  let server: Server | undefined;
  let port = 0;
  const beats = new Set<NodeJS.Timeout>();

  const send = (envelope: Envelope) => {
    const sealed = sealFor(Envelope.encode(envelope).finish(), agentKey!, keys.secretKey);
    stream?.write({
      message: {
        $case: 'sealed',
        value: { nonce: Buffer.from(sealed.nonce), box: Buffer.from(sealed.box) },
      },
    });
  };
  const sendBundle = (b: Bundle) =>
    send({ runId: opts.runId, body: { $case: 'bundle', value: b } });

  const impl: AgentServiceServer = {
    attach(call) {
      attaches.push(call.request);
      stream = call;
      agentKey = call.request.agentPublicKey;
      const resumeCredential = newCredential().credential.toString('base64url');
      sendBundle({ ...bundle, resumeCredential });
      if (opts.heartbeatMs !== undefined) {
        const beat = setInterval(() => {
          call.write({ message: { $case: 'heartbeat', value: { time: new Date() } } });
        }, opts.heartbeatMs);
        beats.add(beat);
        call.on('cancelled', () => {
          clearInterval(beat);
          beats.delete(beat);
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
    update(b) {
      bundle = b;
      sendBundle(b);
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
    statusFile: join(dirs.work, 'env', 'status.json'),
    command: [],
    ...extra,
  };
}
