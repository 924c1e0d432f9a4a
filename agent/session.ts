import {
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { decodeCredential, prove } from '../common/proof.js';
import { BundleError, newKeyPair, openWith, sharedKey } from '../common/sealing.js';
import {
  AgentServiceClient,
  type AttachResponse,
  type Bundle,
  Envelope,
  type ReportStatement,
} from '../proto/gen/runkeys/v1/runs.js';
import { Backoff, sleep } from './backoff.js';
import type { AgentConfig } from './config.js';
import { ASK_INTERVAL_MS, refreshAccountRequest } from './refresh.js';
import { reportRequest } from './report.js';

export const EXIT_UNAVAILABLE = 69;
export const EXIT_REFUSED = 77;

export type SessionEvent =
  | { kind: 'bundle'; bundle: Bundle; first: boolean }
  /**
   * A sealed message (bundle, update or heartbeat) opened with the pinned key: proof that the
   * control plane is there. A bundle's contact comes after its bundle event.
   */
  | { kind: 'contact' }
  /** The stream dropped (or an attach failed); the session keeps trying. */
  | { kind: 'lost' }
  | { kind: 'revoked'; reason: string }
  | { kind: 'fatal'; exitCode: number; message: string };

/**
 * No sealed message that opens (bundle, update or heartbeat) for this long means the stream is
 * dead, or that someone on the path holds it open: either way the agent is offline.
 */
const SILENCE_MS = 45_000;

class StreamEnded extends Error {
  constructor(readonly reason: 'closed' | 'silent' | 'unopenable') {
    super(`stream ${reason}`);
  }
}

/**
 * One agent's link to the control plane:
 * 1. make an ephemeral X25519 key pair (it never leaves this process);
 * 2. attach with a bootstrap proof; until that succeeds, retry an unreachable control plane
 *    until --wait runs out (exit 69); a refusal ends the agent at once (exit 77);
 * 3. open each sealed message with the pinned control-plane key; keep the newest bundle and
 *    the rotated resume credential;
 * 4. when the stream drops, resume with the same key and the resume credential, backing off
 *    with jitter, while the run goes on with what the agent holds (the outage policy, which
 *    the contact and lost events drive, decides for how long);
 * 5. a revocation, or a resume refused because the run ended, ends the session.
 */
export class Session {
  // 1.
  private readonly keys = newKeyPair();
  private readonly client: AgentServiceClient;
  private readonly backoff = new Backoff();
  private readonly abort = new AbortController();
  private resumeCredential: Uint8Array | undefined;
  private shared: Uint8Array | undefined;
  /** Version of the bundle held; -1 before the first. */
  private version = -1;
  private current: ClientReadableStream<AttachResponse> | undefined;
  /** RefreshAccount calls in flight, cancelled by stop() so the agent exits promptly. */
  private readonly asks = new Set<ClientUnaryCall>();
  /** Why the last attach or resume failed, as grpc-js put it; logged with each retry. */
  private lastFailure: string | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly emit: (e: SessionEvent) => void,
    /** Tests shorten it; see SILENCE_MS. */
    private readonly silenceMs = SILENCE_MS,
  ) {
    const { tls } = config;
    const creds =
      tls === undefined
        ? credentials.createInsecure()
        : credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null);
    this.client = new AgentServiceClient(config.addr, creds, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  async run(): Promise<void> {
    const deadline = Date.now() + this.config.waitMs;
    while (!this.abort.signal.aborted) {
      try {
        await this.attachOnce();
      } catch (err) {
        const details = (err as Partial<ServiceError>).details;
        this.lastFailure = typeof details === 'string' ? details : undefined;
        const end = this.judge(err, deadline);
        if (end !== undefined) {
          this.emit(end);
          break;
        }
      }
      if (this.abort.signal.aborted) break;
      this.emit({ kind: 'lost' });
      // Until the first attach, no wait runs past --wait: the last try comes at its end.
      const left = this.resumeCredential === undefined ? deadline - Date.now() : Infinity;
      const wait = Math.min(this.backoff.next(), Math.max(0, left));
      this.log.warn(
        // grpc-js's reason (a refused connection, a TLS alert): never a value.
        { retryInMs: wait, reason: this.lastFailure },
        this.resumeCredential === undefined
          ? 'control plane not reached yet; retrying'
          : 'control plane stream lost; retrying',
      );
      await sleep(wait, this.abort.signal);
    }
  }

  /** Closes the channel; call after run() has settled and the last report went. */
  close(): void {
    this.client.close();
  }

  /**
   * Sends a report (receipts and leak counts), sealed like a refresh ask. Unlike asks, reports
   * still go after the session stopped (the last counts of a revoked run), until close().
   */
  report(body: Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>): Promise<void> {
    const shared = this.shared;
    if (shared === undefined) return Promise.reject(new Error('not attached yet'));
    const request = reportRequest(this.config.runId, body, shared);
    return new Promise<void>((resolve, reject) => {
      this.client.report(request, new Metadata(), { deadline: Date.now() + 5_000 }, (err) => {
        if (err === null) resolve();
        else reject(err);
      });
    });
  }

  stop(): void {
    this.abort.abort();
    this.current?.cancel();
    for (const call of this.asks) call.cancel();
  }

  /**
   * Asks the control plane to refresh a connected account's token (RefreshAccount), sealed
   * with the key bundles are opened with. Resolves when the control plane took the ask; the
   * token itself comes as a new bundle. Rejects before the first bundle and after stop().
   */
  requestRefresh(account: string): Promise<void> {
    const shared = this.shared;
    if (shared === undefined || this.abort.signal.aborted) {
      return Promise.reject(new Error('no attached run to ask for'));
    }

    const request = refreshAccountRequest(this.config.runId, account, shared);
    const deadline = Date.now() + ASK_INTERVAL_MS;
    return new Promise<void>((resolve, reject) => {
      const call = this.client.refreshAccount(request, new Metadata(), { deadline }, (err) => {
        this.asks.delete(call);
        if (err === null) resolve();
        else reject(err);
      });
      this.asks.add(call);
    });
  }

  /** Decides whether a failed attach ends the session, and how. */
  private judge(err: unknown, deadline: number): SessionEvent | undefined {
    if (err instanceof StreamEnded && err.reason === 'unopenable' && this.version === -1) {
      return {
        kind: 'fatal',
        exitCode: EXIT_REFUSED,
        message: 'bundle could not be opened: check RUNKEYS_SERVER_KEY',
      };
    }
    const code = (err as Partial<ServiceError>).code;
    const attached = this.resumeCredential !== undefined;
    if (!attached) {
      if (code === status.UNAUTHENTICATED || code === status.INVALID_ARGUMENT) {
        return {
          kind: 'fatal',
          exitCode: EXIT_REFUSED,
          message:
            'the control plane refused the bootstrap secret (wrong, already used or expired): ' +
            'check RUNKEYS_RUN_ID and RUNKEYS_BOOTSTRAP_SECRET, or create a new run',
        };
      }
      if (Date.now() >= deadline) {
        return {
          kind: 'fatal',
          exitCode: EXIT_UNAVAILABLE,
          message:
            `control plane unreachable at ${this.config.addr} after --wait: ` +
            (this.config.tls === undefined
              ? 'check RUNKEYS_ADDR and that the server is up'
              : 'check RUNKEYS_ADDR, that the server is up, and TLS: RUNKEYS_CA_CERT must have ' +
                'signed its certificate, and a server that requires client certificates needs ' +
                'RUNKEYS_CLIENT_CERT and RUNKEYS_CLIENT_KEY'),
        };
      }
      return undefined;
    }
    if (code === status.FAILED_PRECONDITION) return { kind: 'revoked', reason: 'ended' };
    if (code === status.UNAUTHENTICATED) return { kind: 'revoked', reason: 'resume refused' };
    return undefined;
  }

  private attachOnce(): Promise<void> {
    const { runId } = this.config;
    const kind = this.resumeCredential === undefined ? 'bootstrap' : 'resume';
    const credential = this.resumeCredential ?? this.config.bootstrapSecret;
    const proof = Buffer.from(prove(credential, kind, runId, this.keys.publicKey));
    const call = this.client.attach({
      runId,
      agentPublicKey: Buffer.from(this.keys.publicKey),
      bootstrapProof: kind === 'bootstrap' ? proof : Buffer.alloc(0),
      resumeProof: kind === 'resume' ? proof : Buffer.alloc(0),
      heldVersion: Math.max(0, this.version),
    });
    this.current = call;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        if (err === undefined) resolve();
        else reject(err);
      };
      let watchdog = setTimeout(() => onSilence(), this.silenceMs);
      const onSilence = () => {
        call.cancel();
        finish(new StreamEnded('silent'));
      };
      call.on('data', (msg: AttachResponse) => {
        // Only a message that opens with the pinned key is contact and feeds the watchdog:
        // anything else proves nothing about the control plane (it may be forged on the path).
        if (msg.message?.$case !== 'sealed') return;
        // 3.
        try {
          if (!this.receive(msg.message.value)) return;
        } catch (err) {
          if (!(err instanceof BundleError)) throw err;
          this.log.warn('bundle could not be opened; dropping the stream');
          call.cancel();
          finish(new StreamEnded('unopenable'));
          return;
        }
        clearTimeout(watchdog);
        watchdog = setTimeout(onSilence, this.silenceMs);
        this.emit({ kind: 'contact' });
      });
      call.on('error', (err: ServiceError) => {
        if (err.code === status.CANCELLED && settled) return;
        finish(err);
      });
      call.on('end', () => finish(new StreamEnded('closed')));
    });
  }

  /** Opens and handles one sealed message; false when it ended the session (revocation). */
  private receive(sealed: { nonce: Uint8Array; box: Uint8Array }): boolean {
    this.shared ??= sharedKey(this.config.serverKey, this.keys.secretKey);
    const plaintext = openWith(sealed, this.shared);
    let envelope: Envelope;
    try {
      envelope = Envelope.decode(plaintext);
    } catch {
      // A message that opened but does not decode is treated like one that did not open.
      throw new BundleError();
    }
    if (envelope.runId !== this.config.runId) throw new BundleError();
    const body = envelope.body;
    if (body?.$case === 'revocation') {
      this.emit({ kind: 'revoked', reason: body.value.reason });
      this.stop();
      return false;
    }
    if (body?.$case !== 'bundle') return true;
    const bundle = body.value;
    if (bundle.resumeCredential !== '') {
      const next = decodeCredential(bundle.resumeCredential);
      if (next === undefined) throw new BundleError();
      this.resumeCredential = next;
      this.backoff.reset();
    }
    // An older or repeated version (a replay, or a resume that crossed an update) is ignored.
    if (bundle.version <= this.version) return true;
    const first = this.version === -1;
    this.version = bundle.version;
    this.emit({ kind: 'bundle', bundle, first });
    return true;
  }
}
