import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { OrchestratorError, ValidationError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import { ATTR, contextOf, inSpan, TRACEPARENT } from '../engine/tracing';
import { toGrpcError } from './status';

export const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface CallContext {
  requestId: string;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
  /** The caller's gRPC deadline, if it set one. */
  deadline?: Date;
  log: Logger;
}

/** The caller's x-request-id, or a new one when absent. */
export function requestIdOf(metadata: grpc.Metadata): string {
  const values = metadata.get(REQUEST_ID_HEADER);
  if (values.length === 0) return randomUUID();
  const id = String(values[0]);
  if (!REQUEST_ID.test(id)) throw new ValidationError(REQUEST_ID_HEADER, 'must be 1-128 characters of [A-Za-z0-9._:-]');
  return id;
}

/**
 * Adapts an async handler to grpc-js: request id in and out (response metadata), cancellation and
 * deadline as an AbortSignal, errors through toGrpcError.
 */
export function unary<Req, Res>(log: Logger, method: string, fn: (request: Req, ctx: CallContext) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let requestId: string;
    try {
      requestId = requestIdOf(call.metadata);
    } catch (err) {
      callback(toGrpcError(err));
      return;
    }
    const callLog = log.child({ requestId, method });
    // One signal, whose reason says what happened: the engine maps it like any other error.
    const controller = new AbortController();
    let answered = false;
    // grpc-js also reports 'cancelled' when the stream closes after the answer: nothing to abort then.
    call.on('cancelled', () => {
      if (!answered) controller.abort(new OrchestratorError('CANCELLED', 'the caller cancelled the call or its deadline passed'));
    });
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline - Date.now();
    const at = Number.isFinite(ms) ? new Date(Date.now() + ms) : undefined;
    const timer = at && setTimeout(() => controller.abort(new OrchestratorError('DEADLINE_EXCEEDED', 'the call deadline passed')), Math.max(0, ms));
    // A server span per call, under the caller's traceparent when it sent one: a saga it starts joins the caller's trace.
    const values = call.metadata.get(TRACEPARENT);
    const parent = (values.length > 0 ? contextOf(String(values[0])) : undefined) ?? ROOT_CONTEXT;
    const path = call.getPath().replace(/^\//, '');
    const attributes = { 'rpc.system': 'grpc', 'rpc.service': path.slice(0, path.lastIndexOf('/')), 'rpc.method': method, [ATTR.requestId]: requestId };
    inSpan(path || method, parent, attributes, () => fn(call.request, { requestId, signal: controller.signal, deadline: at, log: callLog }), SpanKind.SERVER).finally(() => {
      answered = true;
      clearTimeout(timer);
    }).then(
      (response) => {
        // Sent with the response, not ahead of it: headers, message and trailers then leave in one write.
        const md = new grpc.Metadata();
        md.set(REQUEST_ID_HEADER, requestId);
        call.sendMetadata(md);
        callback(null, response);
      },
      (err) => {
        const status = toGrpcError(err, requestId);
        callLog.warn('call failed', { code: grpc.status[status.code ?? grpc.status.UNKNOWN], error: status.details });
        callback(status);
      },
    );
  };
}
