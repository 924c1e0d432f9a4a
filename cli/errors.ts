import { status } from '@grpc/grpc-js';
import { OperatorError } from '../common/operator-error.js';

/** A mistake on the command line or its input: exit 2, one line on stderr. */
export class UsageError extends OperatorError {}

export const EXIT_USAGE = 2;
/** A gRPC failure exits with 10 + its status code (e.g. NOT_FOUND 5 exits 15). */
export const EXIT_GRPC_BASE = 10;

export interface GrpcFailure {
  code: number;
  details: string;
}

export function isGrpcFailure(err: unknown): err is GrpcFailure {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as GrpcFailure).code === 'number' &&
    typeof (err as GrpcFailure).details === 'string'
  );
}

export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}
