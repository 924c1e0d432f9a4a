import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import nacl from 'tweetnacl';
import { type ProofKind, prove } from '../../common/proof.js';
import { openFrom } from '../../common/sealing.js';
import {
  type AgentServiceClient,
  AttachRequest,
  type AttachResponse,
  type Bundle,
  Envelope,
  type SealedMessage,
} from '../../proto/gen/runkeys/v1/runs.js';
import type { GrpcOutcome } from './server.js';

// The agent's side of the run protocol written out with common/proof.ts and common/sealing.ts,
// so tests can send exactly the attach they mean (replays, wrong keys, stolen secrets).

export type AgentKeys = nacl.BoxKeyPair;

export const agentKeys = (): AgentKeys => nacl.box.keyPair();

export interface AttachSpec {
  runId: string;
  /** The bootstrap secret or resume credential the proof is made with. */
  credential: Uint8Array;
  keys: AgentKeys;
  kind?: ProofKind;
  /** The run id the proof names; the request's run id unless a test says otherwise. */
  provenRunId?: string;
  heldVersion?: number;
}

export function attachRequest(s: AttachSpec): AttachRequest {
  const kind = s.kind ?? 'bootstrap';
  const proof = Buffer.from(prove(s.credential, kind, s.provenRunId ?? s.runId, s.keys.publicKey));
  return AttachRequest.fromPartial({
    runId: s.runId,
    agentPublicKey: Buffer.from(s.keys.publicKey),
    bootstrapProof: kind === 'bootstrap' ? proof : Buffer.alloc(0),
    resumeProof: kind === 'resume' ? proof : Buffer.alloc(0),
    heldVersion: s.heldVersion ?? 0,
  });
}

export const secretOf = (base64url: string): Uint8Array => Buffer.from(base64url, 'base64url');
export const keyOf = (base64: string): Uint8Array => Buffer.from(base64, 'base64');

/**
 * One Attach stream, read message by message. Heartbeats are sealed too, so they come out of
 * next() like any other message, every 15 s: a test that reads for longer opens each and skips
 * them (LightAgent does).
 */
export class AttachStream {
  private readonly sealed: SealedMessage[] = [];
  private waiter: (() => void) | undefined;
  private outcome: GrpcOutcome | undefined;
  private readonly call: ClientReadableStream<AttachResponse>;

  constructor(client: AgentServiceClient, req: AttachRequest) {
    this.call = client.attach(req);
    this.call.on('data', (msg: AttachResponse) => {
      if (msg.message?.$case === 'sealed') this.sealed.push(msg.message.value);
      this.wake();
    });
    // 'status' follows 'error' for a failed stream; the listener keeps 'error' from throwing.
    this.call.on('error', (_err: ServiceError) => {});
    this.call.on('status', (s: { code: number; details: string }) => {
      this.outcome = { code: s.code, details: s.details };
      this.wake();
    });
  }

  /** The next sealed message; rejects if the stream ends first or nothing comes in time. */
  async next(timeoutMs = 5000): Promise<SealedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msg = this.sealed.shift();
      if (msg !== undefined) return msg;
      if (this.outcome !== undefined) {
        throw new Error(`stream ended (${this.outcome.code}: ${this.outcome.details})`);
      }
      if (Date.now() >= deadline) throw new Error(`no sealed message in ${timeoutMs} ms`);
      await this.wait(deadline - Date.now());
    }
  }

  /** The status the stream ended with. */
  async closed(timeoutMs = 5000): Promise<GrpcOutcome> {
    const deadline = Date.now() + timeoutMs;
    while (this.outcome === undefined) {
      if (Date.now() >= deadline) throw new Error(`stream still open after ${timeoutMs} ms`);
      await this.wait(deadline - Date.now());
    }
    return this.outcome;
  }

  cancel(): void {
    this.call.cancel();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/** Opens a sealed message as the agent does: with the pinned key, or it throws BundleError. */
export function openEnvelope(
  sealed: SealedMessage,
  serverKey: Uint8Array,
  keys: AgentKeys,
): Envelope {
  return Envelope.decode(openFrom(sealed, serverKey, keys.secretKey));
}

export function bundleOf(envelope: Envelope): Bundle {
  if (envelope.body?.$case !== 'bundle')
    throw new Error(`expected a bundle, got ${envelope.body?.$case}`);
  return envelope.body.value;
}
