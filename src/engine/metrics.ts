import type { SagaSnapshot } from './saga';

/**
 * What the engine reports for metrics. The engine knows no metrics library: src/metrics implements
 * this with prom-client, and the default does nothing. Every saga transition is in its history, so
 * one call after each successful write covers sagas, steps, retries and compensations: a write
 * that lost a fenced race is never reported, and each event is reported once, by the instance that
 * stored it.
 */
export interface EngineMetrics {
  /** A write stored `saga.history[from..]` (the create, from 0; a save, the events it appended). */
  recorded(saga: Readonly<SagaSnapshot>, from: number): void;
  /** A throttled call refused with RESOURCE_EXHAUSTED (the queue was full). */
  throttleRejected(facade: string): void;
  /** Recovery fired visit timers that were due `lateMs` ago (one value per visit). */
  timersFired(lateMs: readonly number[]): void;
}

/** Outside the engine: the transport's hooks (publish latency, consumer lag, dead letters). */
export interface TransportMetrics {
  published(topic: string, seconds: number, ok: boolean): void;
  /** Messages of one partition not yet handled, as of this instance's latest batch of it. */
  consumerLag(topic: string, partition: number, lag: number): void;
  /** `reason`: a small fixed set (poison, retries_exhausted), never the error text. */
  deadLettered(topic: string, reason: string): void;
  /** The in-process transport dropped its oldest kept dead letters (over its cap by count or age); `topic`: the dead-letter topic. */
  deadLettersDropped?(topic: string, count: number): void;
}

/** The store's hooks: each operation's latency, and how many calls a group commit carried. */
export interface StoreMetrics {
  operation(op: string, seconds: number, ok: boolean): void;
  batch(op: string, size: number): void;
}

export const NO_METRICS: EngineMetrics = { recorded: () => undefined, throttleRejected: () => undefined, timersFired: () => undefined };
