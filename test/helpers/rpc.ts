import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import * as admin from '../../proto/gen/runkeys/v1/admin.js';
import * as collections from '../../proto/gen/runkeys/v1/collections.js';
import * as envVars from '../../proto/gen/runkeys/v1/env_vars.js';
import * as oauth from '../../proto/gen/runkeys/v1/oauth.js';
import * as providerKeys from '../../proto/gen/runkeys/v1/provider_keys.js';

/** What a call needs of a generated method definition (e.g. EnvVarServiceService.createEnvVar). */
export interface UnaryMethod<Req, Res> {
  path: string;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

export type DeepPartial<T> = T extends Date
  ? T
  : T extends (infer U)[]
    ? DeepPartial<U>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

interface Message {
  fromPartial(partial: unknown): unknown;
}

const MESSAGES: Record<string, unknown> = {
  ...admin,
  ...collections,
  ...envVars,
  ...oauth,
  ...providerKeys,
};

/** The request message of a method path, by the runkeys.v1 convention `<Method>Request`. */
export function requestMessage(path: string, messages = MESSAGES): Message | undefined {
  const method = path.slice(path.lastIndexOf('/') + 1);
  const fns = messages[`${method}Request`] as Message | undefined;
  return typeof fns?.fromPartial === 'function' ? fns : undefined;
}

export function bearer(token: string | undefined): Metadata {
  const md = new Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}

/**
 * One channel to a server that calls any unary method through its generated definition. Requests
 * may be partial: missing fields take their proto3 defaults, as on the wire.
 */
export class Rpc {
  readonly client: Client;

  constructor(readonly address: string) {
    this.client = new Client(address, credentials.createInsecure());
  }

  /** `auth` is a bearer token, or the metadata to send as it is. */
  call<Req, Res>(
    method: UnaryMethod<Req, Res>,
    request: DeepPartial<Req>,
    auth?: string | Metadata,
  ): Promise<Res> {
    const message = requestMessage(method.path);
    const full = (message === undefined ? request : message.fromPartial(request)) as Req;
    return this.raw(method, full, auth instanceof Metadata ? auth : bearer(auth));
  }

  /** Sends the request exactly as given, with the given metadata. */
  raw<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        (r: Req) => method.requestSerialize(r),
        (b: Buffer) => method.responseDeserialize(b),
        request,
        metadata,
        { deadline: Date.now() + 10_000 },
        (err: ServiceError | null, res?: Res) => (err === null ? resolve(res!) : reject(err)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
