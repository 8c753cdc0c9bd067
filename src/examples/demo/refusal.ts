import * as grpc from '@grpc/grpc-js';

export type RefusalCode = 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'FAILED_PRECONDITION' | 'UNAVAILABLE';

/** A demo service saying no, with the gRPC status it answers. */
export class Refusal extends Error {
  override readonly name = 'Refusal';
  constructor(readonly code: RefusalCode, message: string) {
    super(message);
  }
}

/** A refusal answers its own status; work cut by the caller's cancellation CANCELLED; anything else INTERNAL. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof Refusal) return { code: grpc.status[err.code], details: err.message };
  if ((err as Error | null)?.name === 'AbortError') return { code: grpc.status.CANCELLED, details: 'cancelled by the caller' };
  return { code: grpc.status.INTERNAL, details: String(err) };
}

/** Answers a unary call with what `work` resolves to, or the status of what it throws. */
export function respond<T>(cb: grpc.sendUnaryData<T>, work: () => Promise<T> | T): void {
  Promise.resolve().then(work).then((value) => cb(null, value), (err: unknown) => cb(toServiceError(err)));
}

/** An AbortSignal aborted when the unary call is cancelled (caller gone or past its deadline). */
export function signalOf(call: grpc.ServerUnaryCall<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller.signal;
}
