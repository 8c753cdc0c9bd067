/** A saga's data: statuses and their transitions, visits, snapshots as stored. Saga (saga.ts) changes them. */

/** A saga's status only moves forward, along SAGA_TRANSITIONS. */
export type SagaStatus = 'RUNNING' | 'COMPLETED' | 'COMPENSATING' | 'COMPENSATED' | 'COMPENSATION_FAILED';

export type SagaMode = 'sync' | 'async' | 'throttled';

export type StepStatus =
  | 'PENDING'
  | 'RUNNING'
  | 'RETRYING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'COMPENSATING'
  | 'COMPENSATED'
  | 'COMPENSATION_FAILED'
  /** Parked: a wait or race for an event, a sleep, or an external step waiting for its reply. */
  | 'WAITING'
  /** On a branch not taken (or after one): never ran. */
  | 'SKIPPED';

export const SAGA_TRANSITIONS: Readonly<Record<SagaStatus, readonly SagaStatus[]>> = {
  RUNNING: ['COMPLETED', 'COMPENSATING'],
  COMPENSATING: ['COMPENSATED', 'COMPENSATION_FAILED'],
  // RetryCompensation resumes a saga whose compensation ran out of attempts.
  COMPENSATION_FAILED: ['COMPENSATING'],
  COMPLETED: [],
  COMPENSATED: [],
};

export const STEP_TRANSITIONS: Readonly<Record<StepStatus, readonly StepStatus[]>> = {
  PENDING: ['RUNNING', 'WAITING', 'SKIPPED'],
  // RUNNING -> RUNNING: the step is run again after a crash (its outcome was never recorded).
  RUNNING: ['RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'COMPENSATING', 'WAITING'],
  RETRYING: ['RUNNING', 'FAILED', 'COMPENSATING'],
  WAITING: ['SUCCEEDED', 'FAILED', 'COMPENSATING'],
  // A loop came back before the branch that skipped it: it may run after all.
  SKIPPED: ['PENDING'],
  SUCCEEDED: ['COMPENSATING'],
  // A failed or interrupted step may still have acted (e.g. a timeout): it is compensated too.
  FAILED: ['COMPENSATING'],
  COMPENSATING: ['COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'],
  COMPENSATED: [],
  COMPENSATION_FAILED: ['COMPENSATING'],
};

/** The SAGA_STARTED detail of a saga StartSaga started: no caller waits for it. */
export const DETACHED = 'detached: started by StartSaga, no caller waits for it';

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED'];
/** Statuses an instance drives, under a lease. COMPENSATION_FAILED waits for RetryCompensation. */
export const ACTIVE_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPENSATING'];

/**
 * One visit of a node. `name` is the node's name for its first visit and `node#n` for the n-th (a
 * loop came back to it): each visit has its own attempts, output and compensation.
 */
export interface StepState {
  name: string;
  status: StepStatus;
  attempts: number;
  compensationAttempts: number;
  output?: unknown;
  error?: string;
  startedAt?: string;
  endedAt?: string;
  /**
   * The process (owner id) that took the current attempt from its message without being the one
   * that recorded it: if it dies, the attempt may have run, and whoever runs it again records a new one.
   */
  runner?: string;
  /** This visit's timer: a wait's or external step's timeout, a sleep's end, a retry's next attempt. */
  wakeAt?: string;
}

/** The key of a node's n-th visit. Node names hold no '#'. */
export function visitKey(node: string, visit: number): string {
  return visit === 1 ? node : `${node}#${visit}`;
}

export function nodeOf(key: string): string {
  const i = key.indexOf('#');
  return i < 0 ? key : key.slice(0, i);
}

export function visitOf(key: string): number {
  const i = key.indexOf('#');
  return i < 0 ? 1 : Number(key.slice(i + 1));
}

/** An event the saga received (SendEvent, the events topic), kept in its history until a wait takes it. */
export interface ReceivedEvent {
  /** The history seq of its EVENT_RECEIVED entry. */
  seq: number;
  event: string;
  payload: unknown;
  idempotencyKey?: string;
}

export interface SagaEvent {
  seq: number;
  at: string;
  type: string;
  step?: string;
  detail?: string;
  podId?: string;
}

/** A saga as stored and returned by the API: plain JSON. */
export interface SagaSnapshot {
  requestId: string;
  facade: string;
  /** Version of the facade definition this saga runs. */
  version: number;
  mode: SagaMode;
  status: SagaStatus;
  /** Row version for fenced writes: the revision the snapshot was read at (0 before create). */
  revision: number;
  /**
   * The process incarnation driving the saga, under a lease: `<podId>/<start id>`, so that a process
   * restarted under the same pod id takes its predecessor's sagas over like any other instance.
   */
  owner?: string;
  /** Past this instant (ISO 8601) the saga is compensated rather than continued. */
  deadline?: string;
  /** A durable timer: when the current step's next attempt is due. */
  wakeAt?: string;
  /**
   * Read-only, filled in by the store on reads: how long ago (ms, by the store's clock) the lease was
   * last taken or renewed. A live owner renews it every heartbeat; an older one means its owner is gone.
   */
  leaseAgeMs?: number;
  /** Read-only, set by claim(): the lease had lapsed (its owner is gone), rather than a timer being due. */
  leaseLapsed?: boolean;
  /** Read-only, set by claim() with leaseLapsed: the owner whose lease lapsed (step visits it ran were cut off with it). */
  lapsedOwner?: string;
  input: unknown;
  output?: unknown;
  error?: string;
  /** Why it was aborted, as an error code (ErrorCode): every caller of the saga is answered with it. */
  errorCode?: string;
  steps: StepState[];
  history: SagaEvent[];
  /** The W3C traceparent of the call that started the saga (absent with tracing off): its spans join that trace wherever it runs. */
  traceParent?: string;
  createdAt: string;
  updatedAt: string;
}
