import { status } from '@grpc/grpc-js';

/** The closed set of outcomes a handler may report to a client. */
export type ApiCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED';

export const grpcStatusOf: Record<ApiCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
};

/**
 * An error whose message is safe to show a client. The message never carries a value from any
 * credential layer: it names fields and rules only. Anything that is not an ApiError reaches the
 * client as a bland INTERNAL.
 */
export class ApiError extends Error {
  readonly code: ApiCode;

  constructor(code: ApiCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

export const invalid = (message: string): ApiError => new ApiError('INVALID_ARGUMENT', message);
export const notFound = (message: string): ApiError => new ApiError('NOT_FOUND', message);
export const conflict = (message: string): ApiError => new ApiError('ALREADY_EXISTS', message);
export const precondition = (message: string): ApiError =>
  new ApiError('FAILED_PRECONDITION', message);
export const denied = (message: string): ApiError => new ApiError('PERMISSION_DENIED', message);
export const exhausted = (message: string): ApiError => new ApiError('RESOURCE_EXHAUSTED', message);
