/**
 * What tracing adds to one step of an async saga, in-process and without I/O (`node
 * dist/bench/trace-overhead.js [iterations]`): the engine's tracing calls for a step (the context
 * of its message, its span, the traceparent of the message it sends next), with tracing off (the
 * API's no-op tracer, the default) and on (the SDK recording every span, exporting nowhere).
 * Prints ns per step; a step costs the orchestrator about a millisecond of CPU under `make bench`.
 */
import { performance } from 'node:perf_hooks';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR, contextOf, inSpan, sagaContext, traceparentOf } from '../src/engine/tracing';

const iterations = Number(process.argv[2] ?? 200_000);

/** The tracing work of one step: handle() (the message's context), the step span, the next message's header. */
async function step(headers: Record<string, string>, stored: string | undefined): Promise<string | undefined> {
  return context.with(contextOf(headers.traceparent) ?? ROOT_CONTEXT, () => inSpan('step b', sagaContext(stored), {
    [ATTR.requestId]: 'bench-1', [ATTR.facade]: 'AsyncBooking', [ATTR.version]: 1, [ATTR.mode]: 'async', [ATTR.node]: 'b', [ATTR.visit]: 1, [ATTR.attempt]: 1,
  }, async () => traceparentOf()));
}

async function measure(label: string, headers: Record<string, string>, stored: string | undefined): Promise<void> {
  for (let i = 0; i < 10_000; i++) await step(headers, stored); // JIT
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await step(headers, stored);
  const ns = ((performance.now() - t0) * 1e6) / iterations;
  process.stdout.write(`${label.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns per step\n`);
}

async function baseline(): Promise<void> {
  const noop = async () => undefined;
  for (let i = 0; i < 10_000; i++) await noop();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await noop();
  process.stdout.write(`${'an empty async call (for scale)'.padEnd(44)} ${(((performance.now() - t0) * 1e6) / iterations).toFixed(0).padStart(7)} ns\n`);
}

async function main(): Promise<void> {
  process.stdout.write(`tracing work per saga step, ${iterations} iterations\n`);
  await baseline();
  await measure('tracing off (no SDK: the API\'s no-op tracer)', {}, undefined);
  const provider = new NodeTracerProvider({ spanProcessors: [new NoopSpanProcessor()] });
  provider.register();
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await measure('tracing on (SDK, spans recorded, not exported)', { traceparent: tp }, tp);
  await provider.shutdown();
}

void main();
