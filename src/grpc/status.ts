import * as grpc from '@grpc/grpc-js';
import { ensureError, errorCode, SagaAbortedError, type ErrorCode } from '../engine/errors';

const STATUS: Readonly<Record<ErrorCode, grpc.status>> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  ILLEGAL_TRANSITION: grpc.status.FAILED_PRECONDITION,
  SAGA_ABORTED: grpc.status.ABORTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  CANCELLED: grpc.status.CANCELLED,
  POISON_MESSAGE: grpc.status.INTERNAL,
  // A write lost a race with another instance: the client may try again.
  CONFLICT: grpc.status.ABORTED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  INTERNAL: grpc.status.INTERNAL,
};

/**
 * The one place where engine errors become gRPC statuses. A saga rolled back because a
 * dependency was down answers UNAVAILABLE (worth retrying), one past its deadline
 * DEADLINE_EXCEEDED; any other rolled-back saga, ABORTED.
 */
export function toGrpcError(err: unknown, requestId?: string): Partial<grpc.ServiceError> {
  const error = ensureError(err);
  let code = STATUS[errorCode(error)];
  if (error instanceof SagaAbortedError && error.causeCode === 'UNAVAILABLE') code = grpc.status.UNAVAILABLE;
  if (error instanceof SagaAbortedError && error.causeCode === 'DEADLINE_EXCEEDED') code = grpc.status.DEADLINE_EXCEEDED;
  const metadata = new grpc.Metadata();
  if (requestId) metadata.set('x-request-id', requestId);
  const details = code === grpc.status.INTERNAL ? `internal error: ${error.message}` : error.message;
  return { code, details, message: details, metadata };
}

/** The reverse, for upstream calls: which gRPC failures of a dependency are worth retrying. */
export function codeOfGrpcStatus(code: grpc.status | undefined): { code: ErrorCode; retryable: boolean } {
  switch (code) {
    case grpc.status.UNAVAILABLE: return { code: 'UNAVAILABLE', retryable: true };
    case grpc.status.DEADLINE_EXCEEDED: return { code: 'DEADLINE_EXCEEDED', retryable: true };
    case grpc.status.CANCELLED: return { code: 'CANCELLED', retryable: false };
    case grpc.status.INVALID_ARGUMENT: return { code: 'INVALID_ARGUMENT', retryable: false };
    case grpc.status.NOT_FOUND: return { code: 'NOT_FOUND', retryable: false };
    case grpc.status.ALREADY_EXISTS: return { code: 'ALREADY_EXISTS', retryable: false };
    case grpc.status.FAILED_PRECONDITION: return { code: 'FAILED_PRECONDITION', retryable: false };
    case grpc.status.RESOURCE_EXHAUSTED: return { code: 'RESOURCE_EXHAUSTED', retryable: true };
    default: return { code: 'INTERNAL', retryable: false };
  }
}
