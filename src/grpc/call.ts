import * as grpc from '@grpc/grpc-js';
import { context, SpanKind } from '@opentelemetry/api';
import { errorCode, StepError } from '../engine/errors';
import { inSpan, TRACEPARENT, traceparentOf } from '../engine/tracing';
import { codeOfGrpcStatus } from './status';

/**
 * Channel options of the clients of upstream services. grpc-js backs off reconnecting up to 120 s by
 * default: an upstream that comes back would stay unreachable to retries and compensations long
 * after. Saga retries are seconds apart, so reconnect attempts are too. The engine retries steps
 * itself (with idempotency keys), so grpc-js' own retry layer, which buffers every call, is off; so
 * is channelz, whose statistics nobody reads.
 */
export const UPSTREAM_CHANNEL: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1_000, 'grpc.enable_retries': 0, 'grpc.enable_channelz': 0,
};

export interface CallOptions {
  requestId: string;
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** The saga's deadline, passed upstream as the call's gRPC deadline; the call is also cut when `signal` aborts. */
  deadline?: Date;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

/**
 * Calls an upstream unary method with the saga's request id and idempotency key in metadata.
 * Failures come back as StepError with the upstream's status and whether it is worth retrying.
 */
export function callUpstream<Req, Res>(client: grpc.Client, method: string, request: Req, opts: CallOptions): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`upstream has no method ${method}`));
  // A client span under the step's: the upstream gets its traceparent, and joins the saga's trace.
  const attributes = { 'rpc.system': 'grpc', 'rpc.method': method, 'saga.request_id': opts.requestId };
  return inSpan(method, context.active(), attributes, () => unaryCall(client, fn, method, request, opts), SpanKind.CLIENT);
}

function unaryCall<Req, Res>(client: grpc.Client, fn: UnaryMethod<Req, Res>, method: string, request: Req, opts: CallOptions): Promise<Res> {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', opts.requestId);
  if (opts.idempotencyKey) metadata.set('x-idempotency-key', opts.idempotencyKey);
  const traceparent = traceparentOf();
  if (traceparent) metadata.set(TRACEPARENT, traceparent);
  const options: grpc.CallOptions = opts.deadline ? { deadline: opts.deadline } : {};
  return new Promise<Res>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new StepError('CANCELLED', `${method}: aborted before the call`, false));
      return;
    }
    const call = fn.call(client, request, metadata, options, (err, response) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!err) return resolve(response as Res);
      const { code, retryable } = codeOfGrpcStatus(err.code);
      reject(new StepError(code, `${method}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`, retryable, { cause: err }));
    });
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What callUpstream needs from a node's context (a step's or a compensation's). */
export function callOptionsOf(ctx: { requestId: string; idempotencyKey: string; signal: AbortSignal; deadline?: Date }): CallOptions {
  return { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal, deadline: ctx.deadline };
}

/** For compensations by request id: NOT_FOUND means the step never acted, which is what undoing it wants. */
export async function ignoreNotFound(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (errorCode(err) !== 'NOT_FOUND') throw err;
  }
}
