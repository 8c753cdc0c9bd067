import { DEFAULT_MAX_PAYLOAD_BYTES } from './payload';
import { DEFAULT_COMPENSATION, DEFAULT_RETRY, type RetryPolicy } from './retry';

export interface EngineOptions {
  /** Upper bound for one attempt of a step or a compensation. */
  stepTimeoutMs: number;
  /** Default retry policy of steps; a step may override it. */
  retry: RetryPolicy;
  compensation: RetryPolicy;
  /** Deadline of an async saga, from its start. */
  asyncDeadlineMs: number;
  /** Deadline of a sync or throttled saga whose caller sets none. */
  callDeadlineMs: number;
  /** How often leases are renewed; must be well under the store's lease TTL. */
  heartbeatMs: number;
  /** The store's lease TTL: how long a saga this process gave up on stays listed as released. */
  leaseTtlMs: number;
  /** How often expired leases and due timers are claimed. */
  recoveryIntervalMs: number;
  recoveryBatch: number;
  /** How often this instance looks for its own due timers (waits, sleeps, retries): how late a timer may fire. */
  timerPollMs: number;
  /** How many times a loop may come back to one node before the saga fails (a node may set its own). */
  maxVisits: number;
  throttle: { maxConcurrent: number; maxQueue: number };
  /** Fallback poll of the store while a caller waits for a saga another instance drives. */
  outcomePollMs: number;
  /** Largest JSON value (serialised) a saga takes in: an input, an event payload, a step's output (limits.maxPayloadBytes). */
  maxPayloadBytes: number;
  /** Most events one saga takes in (limits.maxEventsPerSaga): its history, read whole with the saga, stays bounded. */
  maxEventsPerSaga: number;
  /** How long a finished saga (COMPLETED, COMPENSATED) is kept before retention deletes it (saga.retentionMs); 0: forever. */
  retentionMs: number;
  /** Retention's pacing: a pass every interval, batches of this many sagas, at least this pause between two. */
  retentionIntervalMs: number;
  retentionBatch: number;
  retentionPauseMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  stepTimeoutMs: 30_000,
  retry: DEFAULT_RETRY,
  compensation: DEFAULT_COMPENSATION,
  asyncDeadlineMs: 300_000,
  callDeadlineMs: 60_000,
  heartbeatMs: 3_000,
  leaseTtlMs: 10_000,
  recoveryIntervalMs: 1_000,
  recoveryBatch: 100,
  timerPollMs: 50,
  maxVisits: 100,
  throttle: { maxConcurrent: 64, maxQueue: 1_000 },
  outcomePollMs: 500,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  maxEventsPerSaga: 1_000,
  retentionMs: 7 * 86_400_000,
  retentionIntervalMs: 60_000,
  retentionBatch: 500,
  retentionPauseMs: 50,
};
