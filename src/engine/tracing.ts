import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ensureError, errorCode } from './errors';

/**
 * Traces through the OpenTelemetry API only: with no SDK registered (tracing off) every span is
 * the API's no-op one and nothing is recorded. The saga's trace context travels as a W3C
 * `traceparent` string (in the store, Kafka headers and gRPC metadata), parsed and written here,
 * so that it needs no global propagator.
 */
export const TRACEPARENT = 'traceparent';

const NAME = 'saga-orchestrator';
const TRACEPARENT_FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;

/** Looked up on each use, not kept: a provider registered later (or a test's, then removed) is the one used. */
export function tracer(): Tracer {
  return trace.getTracer(NAME);
}

/** The attributes every saga span carries (bounded names; the request id is a value, never a name). */
export const ATTR = {
  requestId: 'saga.request_id',
  facade: 'saga.facade',
  version: 'saga.version',
  mode: 'saga.mode',
  node: 'saga.node',
  visit: 'saga.visit',
  attempt: 'saga.attempt',
  outcome: 'saga.outcome',
  errorCode: 'saga.error_code',
} as const;

/** The W3C traceparent of the span in `ctx` (default: the active one), or undefined when there is none (tracing off). */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}

/** A context whose (remote) parent is `traceparent`; undefined for an absent or malformed one. */
export function contextOf(traceparent: string | undefined): Context | undefined {
  const m = traceparent === undefined ? null : TRACEPARENT_FORMAT.exec(traceparent);
  if (!m || m[1] === 'ff') return undefined;
  const sc = { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & 1, isRemote: true };
  return trace.isSpanContextValid(sc) ? trace.setSpanContext(ROOT_CONTEXT, sc) : undefined;
}

/** The trace id of a traceparent (for log lines). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent?.slice(3, 35);
}

/**
 * Where a saga's span belongs: under the active span if it is in the saga's trace (the step that
 * sent the message, the call running the saga), else under the saga's stored context, so that a
 * saga moved on by another call (an event) or resumed by another instance stays in its one trace.
 */
export function sagaContext(traceparent: string | undefined): Context {
  const stored = contextOf(traceparent);
  if (!stored) return context.active();
  const active = trace.getSpanContext(context.active());
  return active && active.traceId === traceIdOf(traceparent) ? context.active() : stored;
}

/** Marks the span failed with the error (status ERROR, an exception event, the saga error code). */
export function recordError(span: Span, err: unknown): void {
  const error = ensureError(err);
  span.recordException(error);
  span.setAttribute(ATTR.errorCode, errorCode(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

/** Runs `fn` with a new span active, under `parent`; a throw is recorded on the span and rethrown. */
export async function inSpan<T>(name: string, parent: Context, attributes: Attributes, fn: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  const span = tracer().startSpan(name, { kind, attributes }, parent);
  // Tracing off (the API's no-op span, no context to pass on): nothing to record or propagate.
  if (!span.isRecording() && !trace.isSpanContextValid(span.spanContext())) return fn(span);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
