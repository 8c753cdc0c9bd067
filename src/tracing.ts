import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export interface Tracing {
  /** Which exporters run (`otlp`, `console`). */
  exporters: string[];
  /** Sends the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** A bad OTEL_* variable, named. */
export class TracingConfigError extends Error {}

const EXPORTERS = ['otlp', 'console', 'none'];

/**
 * Which exporters the standard OTEL_* variables ask for. Off unless configured: OTEL_TRACES_EXPORTER
 * names them; without it, an OTLP endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT) turns the OTLP exporter on. OTEL_SDK_DISABLED=true turns it all off.
 */
export function tracingExporters(env: NodeJS.ProcessEnv): string[] {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return [];
  const named = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const unknown = named.find((n) => !EXPORTERS.includes(n));
  if (unknown) throw new TracingConfigError(`OTEL_TRACES_EXPORTER: unknown exporter "${unknown}" (one of ${EXPORTERS.join(', ')})`);
  if (named.length === 0) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT ? ['otlp'] : [];
  return named.includes('none') ? [] : [...new Set(named)];
}

/**
 * The OpenTelemetry SDK, when the environment asks for it: a Node tracer provider (AsyncLocalStorage
 * context, W3C propagation) registered globally, so that the engine's API calls record spans.
 * The OTLP exporter speaks http/protobuf and reads its endpoint, headers and timeout from the
 * OTEL_EXPORTER_OTLP_* variables; OTEL_TRACES_SAMPLER, OTEL_BSP_* and OTEL_SERVICE_NAME /
 * OTEL_RESOURCE_ATTRIBUTES are read by the SDK. Undefined when tracing is off. `env` decides
 * whether and with which exporters; the exporter and the SDK read their own settings from process.env.
 */
export function startTracing(env: NodeJS.ProcessEnv, podId: string): Tracing | undefined {
  const exporters = tracingExporters(env);
  if (exporters.length === 0) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (exporters.includes('otlp') && protocol !== undefined && protocol !== 'http/protobuf') {
    const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    throw new TracingConfigError(`${name}: "${protocol}" is not supported; the orchestrator exports OTLP as http/protobuf`);
  }
  const spanProcessors: SpanProcessor[] = exporters.map((e) => new BatchSpanProcessor(e === 'otlp' ? new OTLPTraceExporter() : new ConsoleSpanExporter()));
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over these defaults.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'saga-orchestrator', 'service.instance.id': podId }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register();
  return { exporters, shutdown: () => provider.shutdown() };
}
