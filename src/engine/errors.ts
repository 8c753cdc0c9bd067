/**
 * Errors are data: each carries a stable `code` (mapped to a gRPC status in one place, the gRPC
 * edge) and a `retryable` flag. They are recognised by `name` as well as by class, so they keep
 * their meaning after a trip through Kafka as JSON.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'SAGA_ABORTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'ILLEGAL_TRANSITION'
  | 'POISON_MESSAGE'
  | 'CONFLICT'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL';

export class OrchestratorError extends Error {
  override readonly name: string = 'OrchestratorError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A request field is missing or out of range. */
export class ValidationError extends OrchestratorError {
  override readonly name = 'ValidationError';
  constructor(readonly field: string, problem: string) {
    super('INVALID_ARGUMENT', `${field}: ${problem}`);
  }
}

export class NotFoundError extends OrchestratorError {
  override readonly name = 'NotFoundError';
  /** `why`: what the caller should know, e.g. that finished sagas are deleted after a retention. */
  constructor(what: string, why?: string) {
    super('NOT_FOUND', why ? `${what} not found: ${why}` : `${what} not found`);
  }
}

export class AlreadyExistsError extends OrchestratorError {
  override readonly name = 'AlreadyExistsError';
  constructor(what: string) {
    super('ALREADY_EXISTS', `${what} already exists`);
  }
}

export class IllegalTransitionError extends OrchestratorError {
  override readonly name = 'IllegalTransitionError';
  constructor(what: string, from: string, to: string) {
    super('ILLEGAL_TRANSITION', `${what}: illegal transition ${from} -> ${to}`);
  }
}

/**
 * This process does not have the facade version a saga runs on (a rolling update: another instance
 * has it). NOT_FOUND to a caller; a message for that saga is handed to an instance that has it.
 */
export class MissingVersionError extends OrchestratorError {
  override readonly name = 'MissingVersionError';
  constructor(readonly facade: string, readonly version: number, message: string) {
    super('NOT_FOUND', message);
  }
}

/** A write lost the race: another writer changed the saga since it was read (fencing). */
export class ConcurrencyError extends OrchestratorError {
  override readonly name = 'ConcurrencyError';
  constructor(requestId: string, expected: number) {
    super('CONFLICT', `saga ${requestId} was changed by another writer (expected revision ${expected})`, true);
  }
}

/** The saga store cannot be reached; the work is retried, never dropped. */
export class StoreUnavailableError extends OrchestratorError {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', `saga store unavailable: ${message}`, true, options);
  }
}

/**
 * Thrown by a step (node) to say how its failure should be treated. Upstream UNAVAILABLE or
 * DEADLINE_EXCEEDED are retryable; a refusal by the upstream is not.
 */
export class StepError extends OrchestratorError {
  override readonly name = 'StepError';
  constructor(code: ErrorCode, message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(code, message, retryable, options);
  }
}

/**
 * The broker refuses a message this large (its message.max.bytes, or transport.kafka.maxMessageBytes
 * here): no retry would send it, so it is never retried.
 */
export class MessageTooLargeError extends OrchestratorError {
  override readonly name = 'MessageTooLargeError';
  constructor(readonly topic: string, detail: string) {
    super('INVALID_ARGUMENT', `message to ${topic} refused as too large: ${detail}`, false);
  }
}

/** A saga failed at `failedStep` and its completed steps are being compensated. */
export class SagaAbortedError extends OrchestratorError {
  override readonly name = 'SagaAbortedError';
  constructor(
    readonly requestId: string,
    readonly failedStep: string,
    readonly causeCode: ErrorCode,
    readonly causeMessage: string,
  ) {
    super('SAGA_ABORTED', `saga ${requestId} aborted at node ${failedStep}: ${causeMessage}; completed steps are being compensated`);
  }
}

/** A message that can never be handled: the transport moves it to the dead-letter topic. */
export class PoisonMessageError extends OrchestratorError {
  override readonly name = 'PoisonMessageError';
  constructor(reason: string) {
    super('POISON_MESSAGE', reason);
  }
}

/** Turns anything thrown into an Error, so that callers can rely on `.message`. */
export function ensureError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (typeof err === 'string') return new Error(err);
  try {
    return new Error(JSON.stringify(err));
  } catch {
    return new Error(String(err));
  }
}

/** The error's code, or INTERNAL for anything that is not ours. */
export function errorCode(err: unknown): ErrorCode {
  if (err instanceof OrchestratorError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && isErrorCode(code) ? code : 'INTERNAL';
}

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'SAGA_ABORTED',
  'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'CANCELLED', 'ILLEGAL_TRANSITION', 'POISON_MESSAGE', 'CONFLICT', 'RESOURCE_EXHAUSTED', 'INTERNAL',
]);

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && CODES.has(code);
}
