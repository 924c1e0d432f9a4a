import {
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { readTlsFiles, type TlsFiles } from '../common/tls-files.js';
import { UsageError } from './errors.js';

export const DEFAULT_ADDR = '127.0.0.1:7443';

export interface ConnectionOptions {
  addr?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
}

export interface Connection {
  addr: string;
  credentials: ChannelCredentials;
  metadata: Metadata;
}

/** Address and TLS from flags or RUNKEYS_* variables; the token only from RUNKEYS_TOKEN. */
export function connection(opts: ConnectionOptions, env: NodeJS.ProcessEnv): Connection {
  const addr = opts.addr ?? env.RUNKEYS_ADDR ?? DEFAULT_ADDR;
  let tls: TlsFiles;
  try {
    tls = readTlsFiles(
      {
        caCert: opts.caCert ?? env.RUNKEYS_CA_CERT,
        clientCert: opts.clientCert ?? env.RUNKEYS_CLIENT_CERT,
        clientKey: opts.clientKey ?? env.RUNKEYS_CLIENT_KEY,
      },
      process.cwd(),
    );
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const creds =
    tls.ca === undefined
      ? credentials.createInsecure()
      : credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null);
  const metadata = new Metadata();
  const token = env.RUNKEYS_TOKEN;
  if (token !== undefined && token !== '') metadata.set('authorization', `Bearer ${token.trim()}`);
  return { addr, credentials: creds, metadata };
}

type ClientCtor<C extends Client> = new (address: string, credentials: ChannelCredentials) => C;

export function makeClient<C extends Client>(ctor: ClientCtor<C>, conn: Connection): C {
  return new ctor(conn.addr, conn.credentials);
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Calls a unary method with the connection's token and a deadline. */
export function unary<Req, Res>(
  conn: Connection,
  method: UnaryMethod<Req, Res>,
  request: Req,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, conn.metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err !== null) reject(err);
      else resolve(res);
    });
  });
}

export function requireToken(env: NodeJS.ProcessEnv): void {
  if (env.RUNKEYS_TOKEN === undefined || env.RUNKEYS_TOKEN === '') {
    throw new UsageError('RUNKEYS_TOKEN is not set: export the admin token first');
  }
}
