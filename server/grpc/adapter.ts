import { performance } from 'node:perf_hooks';
import {
  type handleUnaryCall,
  Metadata,
  type ServerUnaryCall,
  type ServiceDefinition,
  type StatusObject,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Principal } from '../auth/principal.js';
import { ApiError, grpcStatusOf, invalid } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { isStoreUnavailable } from '../store/postgres.js';

export interface CallContext {
  principal: Principal;
  log: Logger;
}

export type Handler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;

/** The method names of a generated server interface, without its index signature. */
type MethodKeys<S> = keyof {
  [K in keyof S as string extends K ? never : K]: S[K];
};

/** The async handlers that implement a generated grpc-js service interface. */
export type Handlers<S> = {
  [K in MethodKeys<S>]: S[K] extends handleUnaryCall<infer Req, infer Res>
    ? Handler<Req, Res>
    : never;
};

export type Authenticate = (metadata: Metadata) => Promise<Principal>;

export interface AdapterDeps {
  authenticate: Authenticate;
  log: Logger;
  metrics?: Metrics;
  limits?: Limits;
}

const BLAND_INTERNAL = 'internal error; the server log has the details';

/**
 * Wraps async handlers for grpc-js, which ignores the promise a handler returns: every call is
 * authenticated, awaited, and its failure mapped once. An ApiError becomes its status with its
 * message; anything else becomes INTERNAL with a bland message while its cause goes to the log.
 */
export function bindService<S extends UntypedServiceImplementation>(
  deps: AdapterDeps,
  serviceName: string,
  handlers: Handlers<S>,
): S {
  const impl: Record<string, handleUnaryCall<unknown, unknown>> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const method = `${serviceName}/${name[0]!.toUpperCase()}${name.slice(1)}`;
    impl[name] = unary(deps, method, handler as Handler<unknown, unknown>);
  }
  return impl as S;
}

function unary<Req, Res>(
  deps: AdapterDeps,
  method: string,
  handler: Handler<Req, Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const run = async (): Promise<Res> => {
      refuseUndecodable(call.request);
      const principal = await deps.authenticate(call.metadata);
      deps.limits?.checkWrite(method, principal.tokenId);
      const log = deps.log.child({ method, actor: principal.tokenId });
      return handler(call.request, { principal, log });
    };
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    run().then(
      (response) => {
        deps.metrics?.observeRpc(method, status.OK, took());
        callback(null, response);
      },
      (err: unknown) => {
        const s = toStatus(err, deps.log, method);
        deps.metrics?.observeRpc(method, s.code, took());
        callback(s);
      },
    );
  };
}

/**
 * The one place a failure becomes a status: an ApiError keeps its code and message; anything
 * else is logged with its cause beside the method and reaches the client as a bland INTERNAL,
 * but for a store that cannot be reached (UNAVAILABLE: every change is one transaction, so none
 * was half made).
 * Streaming handlers (AgentService.Attach) use it too.
 */
export function toStatus(err: unknown, log: Logger, method: string): StatusObject {
  if (err instanceof ApiError) {
    return { code: grpcStatusOf[err.code], details: err.message, metadata: new Metadata() };
  }
  if (isStoreUnavailable(err)) {
    log.warn({ method, err }, 'store unavailable');
    return {
      code: status.UNAVAILABLE,
      details: 'the store is unavailable; nothing was changed, try again',
      metadata: new Metadata(),
    };
  }
  log.error({ method, err }, 'handler failed');
  return { code: status.INTERNAL, details: BLAND_INTERNAL, metadata: new Metadata() };
}

/** What a request that could not be decoded becomes, so its handler can refuse it as such. */
const UNDECODABLE = Symbol('undecodable request');

/**
 * The service definition with decoders that never throw: grpc-js answers a decoder's exception
 * with INTERNAL before any handler runs, but bytes that are not the message (a varint past
 * 2^53, a truncated field) are the caller's mistake. Such a request reaches the handler marked,
 * and refuseUndecodable() answers INVALID_ARGUMENT.
 */
export function tolerantDecoding<D extends ServiceDefinition>(definition: D): D {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch {
          return { [UNDECODABLE]: true };
        }
      },
    };
  }
  return out as D;
}

export function refuseUndecodable(request: unknown): void {
  if (typeof request === 'object' && request !== null && UNDECODABLE in request) {
    throw invalid(
      'the request is not a valid message of this method (a number out of range, or bytes ' +
        'that are not protobuf)',
    );
  }
}
