import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * The SDK with an in-memory exporter, registered globally for one suite (the whole test run shares
 * a process): install() in before(), uninstall() in after(), so other suites run with tracing off.
 */
export class MemoryTracing {
  readonly exporter = new InMemorySpanExporter();
  private provider?: NodeTracerProvider;

  install(): void {
    this.provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.exporter)] });
    this.provider.register();
  }

  async uninstall(): Promise<void> {
    await this.provider?.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  }

  /** A tracer of the test's own (a caller's spans). */
  tracer(): Tracer {
    return trace.getTracer('test');
  }

  spans(): ReadableSpan[] {
    return this.exporter.getFinishedSpans();
  }

  /** The spans of one trace. */
  trace(traceId: string): ReadableSpan[] {
    return this.spans().filter((s) => s.spanContext().traceId === traceId);
  }
}

/** One span by name (exactly one must match). */
export function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) throw new Error(`expected one span ${name}, found ${found.length} among ${spans.map((s) => s.name).join(', ')}`);
  return found[0];
}

export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** The tree of a trace as indented names ("saga X", "  step a", ...), children in start order: what a trace viewer shows. */
export function treeOf(spans: readonly ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const byStart = [...spans].sort((a, b) => (a.startTime[0] - b.startTime[0]) || (a.startTime[1] - b.startTime[1]));
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number) => {
    for (const s of byStart.filter((x) => (parent === undefined ? !ids.has(parentOf(x) ?? '') : parentOf(x) === parent))) {
      lines.push(`${'  '.repeat(depth)}${s.name}`);
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines;
}
