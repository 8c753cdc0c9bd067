import { ensureError, errorCode, ValidationError, type ErrorCode } from '../engine/errors';
import { HttpError } from '../http/server';

const STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  ILLEGAL_TRANSITION: 409,
  // The saga the action was about failed meanwhile: the request was fine, the saga's state says why.
  SAGA_ABORTED: 409,
  // Lost a race with another instance's write: worth trying again.
  CONFLICT: 409,
  CANCELLED: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  POISON_MESSAGE: 500,
  INTERNAL: 500,
};

export interface HttpFailure {
  status: number;
  body: { error: string; code: ErrorCode | 'HTTP'; field?: string };
}

/**
 * The one place where engine errors become HTTP statuses for the console's API (the gRPC edge
 * has its own, src/grpc/status.ts). The body names the engine's code, and the field for bad input.
 */
export function httpFailureOf(err: unknown): HttpFailure {
  if (err instanceof HttpError) return { status: err.status, body: { error: err.message, code: 'HTTP' } };
  const error = ensureError(err);
  const code = errorCode(error);
  const status = STATUS[code];
  const message = status === 500 ? `internal error: ${error.message}` : error.message;
  return { status, body: { error: message, code, ...(error instanceof ValidationError ? { field: error.field } : {}) } };
}
