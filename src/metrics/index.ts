import { collectDefaultMetrics, Registry } from 'prom-client';
import { NO_METRICS, type EngineMetrics, type StoreMetrics, type TransportMetrics } from '../engine/metrics';
import { registerGauges, type GaugeSources } from './gauges';
import { StoreSeries, TransportSeries } from './infra-series';
import { SagaSeries } from './saga-series';

/** The process's metrics: the hooks handed to the engine, the transport and the store, and the registry /metrics serves. */
export interface Metrics {
  readonly enabled: boolean;
  readonly engine: EngineMetrics;
  readonly transport?: TransportMetrics;
  readonly store?: StoreMetrics;
  /** Starts the scrape-time gauges (saga counts from the store, the throttle). */
  watch(sources: GaugeSources): void;
  /** The Prometheus text exposition of every series; undefined when metrics are off. */
  scrape(): Promise<{ contentType: string; text: string }> | undefined;
}

/**
 * One registry per process (not prom-client's global one, so that several Apps in one test
 * process keep their counts apart). Off (`metrics.enabled: false`): the hooks do nothing at all.
 */
export function createMetrics(enabled: boolean): Metrics {
  if (!enabled) return { enabled, engine: NO_METRICS, watch: () => undefined, scrape: () => undefined };
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  return {
    enabled,
    engine: new SagaSeries(registers),
    transport: new TransportSeries(registers),
    store: new StoreSeries(registers),
    watch: (sources) => registerGauges(registers, sources),
    scrape: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}
