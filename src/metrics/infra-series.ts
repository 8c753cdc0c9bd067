import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StoreMetrics, TransportMetrics } from '../engine/metrics';

/** Seconds: a Kafka publish (acks=all) or a Postgres statement, sub-ms to seconds. */
const IO_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Calls one group commit carries (the store batches up to 200). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** Kafka's series, by topic (the logical name, without the prefix): a set declared in topics/. */
export class TransportSeries implements TransportMetrics {
  private readonly publish: Histogram<'topic' | 'outcome'>;
  private readonly deadLetters: Counter<'topic' | 'reason'>;
  private readonly dropped: Counter<'topic'>;
  /** Latest lag of each partition this instance consumes, by topic: the gauge is their sum. */
  private readonly lags = new Map<string, Map<number, number>>();

  constructor(registers: Registry[]) {
    this.publish = new Histogram({
      name: 'och_kafka_publish_duration_seconds', help: 'From publish() to the broker\'s ack (acks=all), batching included; outcome ok or error.',
      labelNames: ['topic', 'outcome'], buckets: IO_BUCKETS, registers,
    });
    this.deadLetters = new Counter({
      name: 'och_dead_letters_total', help: 'Messages dead-lettered, by the topic they came from and why: poison (can never be handled) or retries_exhausted.',
      labelNames: ['topic', 'reason'], registers,
    });
    this.dropped = new Counter({
      name: 'och_dead_letters_dropped_total', help: 'Dead letters the in-process transport dropped, oldest first, to stay within its bounds (count and age), by dead-letter topic.',
      labelNames: ['topic'], registers,
    });
    const lags = this.lags;
    new Gauge({
      name: 'och_kafka_consumer_lag_messages', help: 'Messages not yet handled on the partitions this instance consumes, as of its latest batch of each.',
      labelNames: ['topic'], registers,
      collect() {
        this.reset();
        for (const [topic, partitions] of lags) this.set({ topic }, [...partitions.values()].reduce((a, b) => a + b, 0));
      },
    });
  }

  published(topic: string, seconds: number, ok: boolean): void {
    this.publish.observe({ topic, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  consumerLag(topic: string, partition: number, lag: number): void {
    let partitions = this.lags.get(topic);
    if (!partitions) this.lags.set(topic, (partitions = new Map<number, number>()));
    partitions.set(partition, lag);
  }

  deadLettered(topic: string, reason: string): void {
    this.deadLetters.inc({ topic, reason });
  }

  deadLettersDropped(topic: string, count: number): void {
    this.dropped.inc({ topic }, count);
  }
}

/** The store's series, by operation (create, get, save, list, claim, renewLeases, ...: the store's own names). */
export class StoreSeries implements StoreMetrics {
  private readonly latency: Histogram<'operation' | 'outcome'>;
  private readonly batches: Histogram<'operation'>;

  constructor(registers: Registry[]) {
    this.latency = new Histogram({
      name: 'och_store_operation_duration_seconds', help: 'One statement of the saga store (a batched one counts once), outcome ok or error.',
      labelNames: ['operation', 'outcome'], buckets: IO_BUCKETS, registers,
    });
    this.batches = new Histogram({
      name: 'och_store_batch_size', help: 'Calls carried by one group-commit statement (create, get, save).', labelNames: ['operation'], buckets: BATCH_BUCKETS, registers,
    });
  }

  operation(op: string, seconds: number, ok: boolean): void {
    this.latency.observe({ operation: op, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  batch(op: string, size: number): void {
    this.batches.observe({ operation: op }, size);
  }
}
