import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type CallOptions, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { AdminTokenServiceClient, AuditServiceClient } from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceClient } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceClient } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceClient,
  OAuthClientServiceClient,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { ProviderKeyServiceClient } from '../../proto/gen/runkeys/v1/provider_keys.js';
import { type RunningServer, startServer } from '../../server/app.js';
import type { ServerConfig } from '../../server/config.js';
import type { RefreshHooks } from '../../server/oauth/refresh.js';

/** Collects every line a logger or stream writes, for the canary checks. */
export class Capture extends Writable {
  readonly chunks: string[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }

  text(): string {
    return this.chunks.join('');
  }
}

export interface TestServer {
  address: string;
  dataDir: string;
  rootToken: string;
  logs: Capture;
  stderr: Capture;
  server: RunningServer;
  close(): Promise<void>;
}

export interface TestServerOptions {
  dataDir?: string;
  masterKey?: string;
  /** The server's clock; Date.now unless a test moves time itself. */
  now?: () => number;
  /** Start the HTTP listener (OAuth callback) on a free loopback port. */
  http?: boolean;
  /** Keep the store in this PostgreSQL database (a master key is made when none is given). */
  databaseUrl?: string;
  refresh?: ServerConfig['refresh'];
  limits?: ServerConfig['limits'];
  refreshHooks?: RefreshHooks;
  auditRetentionMs?: number;
}

/** A real control plane on a loopback port with its own data dir and captured logs. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'runkeys-test-'));
  const logs = new Capture();
  const stderr = new Capture();
  const tokenFile = join(dataDir, `root-token-${process.pid}-${Date.now()}`);
  const log = pino({ level: 'debug' }, logs);
  const server = await startServer(
    {
      listen: '127.0.0.1:0',
      dataDir,
      initTokenFile: tokenFile,
      logLevel: 'debug',
      logPretty: false,
      masterKey:
        options.masterKey ??
        (options.databaseUrl === undefined ? undefined : randomBytes(32).toString('base64')),
      databaseUrl: options.databaseUrl,
      httpListen: options.http === true ? '127.0.0.1:0' : undefined,
      refresh: options.refresh,
      auditRetentionMs: options.auditRetentionMs,
      // Tests write fast; the limits test sets its own.
      limits: options.limits ?? { adminWritesPerSecond: 1e6, adminWriteBurst: 1e6 },
    },
    log,
    { stderr, now: options.now, refreshHooks: options.refreshHooks },
  );
  let rootToken = '';
  try {
    rootToken = readFileSync(tokenFile, 'utf8').trim();
    rmSync(tokenFile);
  } catch {
    // A reused data dir already has its root token; the caller brings its own.
  }
  return {
    address: server.address,
    dataDir,
    rootToken,
    logs,
    stderr,
    server,
    close: () => server.close(1000),
  };
}

export function metadataFor(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** Generated clients for every admin service, bound to one address. */
export function adminClients(address: string) {
  const c = credentials.createInsecure();
  return {
    collections: new CollectionServiceClient(address, c),
    providers: new ProviderKeyServiceClient(address, c),
    env: new EnvVarServiceClient(address, c),
    oauthClients: new OAuthClientServiceClient(address, c),
    accounts: new ConnectedAccountServiceClient(address, c),
    tokens: new AdminTokenServiceClient(address, c),
    audit: new AuditServiceClient(address, c),
  };
}

export type AdminClients = ReturnType<typeof adminClients>;

export function closeClients(clients: AdminClients): void {
  for (const c of Object.values(clients)) c.close();
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
/**
 * The widest overload of a generated client method; TypeScript infers Req and Res from the last
 * overload, which is this one.
 */
type Method<Req, Res> = (
  req: Req,
  md: Metadata,
  options: Partial<CallOptions>,
  cb: Callback<Res>,
) => unknown;

/** Calls a unary method with a token; resolves the response or rejects with the ServiceError. */
export function call<Req, Res>(method: Method<Req, Res>, req: Req, token: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, metadataFor(token), {}, (err, res) => (err === null ? resolve(res) : reject(err)));
  });
}

export interface GrpcOutcome {
  code: number;
  details: string;
}

/** The status a failing call ended with. */
export async function failure(p: Promise<unknown>): Promise<GrpcOutcome> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail, and it succeeded');
}
