import { IllegalTransitionError } from './errors';
import type { SagaChanges } from './store';

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
  // The graph engine's: a wait parked on its events, a node a branch did not choose.
  | 'WAITING'
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
  PENDING: ['RUNNING'],
  // RUNNING -> RUNNING: the step is run again after a crash (its outcome was never recorded).
  RUNNING: ['RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'COMPENSATING'],
  RETRYING: ['RUNNING', 'COMPENSATING'],
  SUCCEEDED: ['COMPENSATING'],
  // A failed or interrupted step may still have acted (e.g. a timeout): it is compensated too.
  FAILED: ['COMPENSATING'],
  COMPENSATING: ['COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'],
  COMPENSATED: [],
  COMPENSATION_FAILED: ['COMPENSATING'],
  // No step enters these yet: the graph engine gives them their moves.
  WAITING: [],
  SKIPPED: [],
};

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED'];
/** Statuses an instance drives, under a lease. COMPENSATION_FAILED waits for RetryCompensation. */
export const ACTIVE_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPENSATING'];

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
  input: unknown;
  output?: unknown;
  error?: string;
  /** Why it was aborted, as an error code (ErrorCode): every caller of the saga is answered with it. */
  errorCode?: string;
  steps: StepState[];
  history: SagaEvent[];
  createdAt: string;
  updatedAt: string;
}

/**
 * One saga: an instance of a versioned facade definition. It owns its state changes, refuses
 * illegal ones and records each in an append-only history. It does no I/O.
 */
export class Saga {
  /** History events [0, storedEvents) and steps outside changedSteps are as the store has them at this revision. */
  private storedEvents: number;
  private readonly changedSteps = new Set<string>();

  private constructor(private readonly state: SagaSnapshot, private readonly podId: string) {
    this.storedEvents = state.history.length;
  }

  static start(args: {
    requestId: string; facade: string; version: number; mode: SagaMode; input: unknown; steps: readonly string[]; podId: string; deadline?: Date;
    /** The lease holder: this process incarnation (default: podId). */
    owner?: string;
  }): Saga {
    const now = new Date().toISOString();
    const saga = new Saga(
      {
        requestId: args.requestId,
        facade: args.facade,
        version: args.version,
        mode: args.mode,
        status: 'RUNNING',
        revision: 0,
        owner: args.owner ?? args.podId,
        deadline: args.deadline?.toISOString(),
        input: args.input,
        steps: args.steps.map((name) => ({ name, status: 'PENDING', attempts: 0, compensationAttempts: 0 })),
        history: [],
        createdAt: now,
        updatedAt: now,
      },
      args.podId,
    );
    saga.record('SAGA_STARTED');
    return saga;
  }

  static fromSnapshot(snapshot: SagaSnapshot, podId: string): Saga {
    return new Saga(structuredClone(snapshot), podId);
  }

  /** Like fromSnapshot(), without the copy: for a snapshot nobody else holds (fresh from a store). */
  static adopt(snapshot: SagaSnapshot, podId: string): Saga {
    return new Saga(snapshot, podId);
  }

  get requestId(): string { return this.state.requestId; }
  get facade(): string { return this.state.facade; }
  get status(): SagaStatus { return this.state.status; }
  get input(): unknown { return this.state.input; }
  get mode(): SagaMode { return this.state.mode; }
  get owner(): string | undefined { return this.state.owner; }
  get revision(): number { return this.state.revision; }
  get isTerminal(): boolean { return TERMINAL_STATUSES.includes(this.state.status); }
  get deadline(): Date | undefined { return this.state.deadline ? new Date(this.state.deadline) : undefined; }
  get pastDeadline(): boolean { return this.state.deadline !== undefined && Date.parse(this.state.deadline) <= Date.now(); }
  get steps(): readonly Readonly<StepState>[] { return this.state.steps; }
  get leaseAgeMs(): number | undefined { return this.state.leaseAgeMs; }
  get wakeAtMs(): number | undefined { return this.state.wakeAt === undefined ? undefined : Date.parse(this.state.wakeAt); }

  /** The step whose compensation attempt started and has no outcome on record: it is running now, or was cut off. */
  compensationInFlight(): string | undefined {
    const last = new Map<string, string>();
    for (const e of this.state.history) if (e.step && e.type.startsWith('COMPENSATION_')) last.set(e.step, e.type);
    for (const [step, type] of last) if (type === 'COMPENSATION_STARTED' && this.step(step).status === 'COMPENSATING') return step;
    return undefined;
  }

  /** After a successful write: the store's new revision; the store now has everything. */
  saved(revision: number): void {
    this.state.revision = revision;
    this.storedEvents = this.state.history.length;
    this.changedSteps.clear();
  }

  /** What changed since the saga was read or last written, so that a store may write only that. */
  changes(): SagaChanges {
    return { storedEvents: this.storedEvents, steps: this.changedSteps };
  }

  /** This process incarnation drives the saga from now on (the store renews the lease on save). */
  own(owner: string): void {
    this.state.owner = owner;
  }

  /** Sets or clears the durable timer for the next attempt. */
  wakeAt(at: Date | undefined): void {
    this.state.wakeAt = at?.toISOString();
  }

  /** Outputs of the succeeded steps, by name, in step order. */
  results(): Record<string, unknown> {
    return Object.fromEntries(this.state.steps.filter((s) => s.output !== undefined).map((s) => [s.name, s.output]));
  }

  step(name: string): Readonly<StepState> {
    const step = this.state.steps.find((s) => s.name === name);
    if (!step) throw new Error(`saga ${this.requestId} has no step ${name}`);
    return step;
  }

  snapshot(): SagaSnapshot {
    return structuredClone(this.state);
  }

  /** The live state, not a copy: for a store to write it at once. Whoever keeps it must copy it. */
  view(): Readonly<SagaSnapshot> {
    return this.state;
  }

  complete(output: unknown): void {
    this.moveTo('COMPLETED');
    this.state.output = output;
  }

  startCompensating(failedStep: string, error: string, code: string): void {
    this.moveTo('COMPENSATING', failedStep, error);
    this.state.error = `${failedStep}: ${error}`;
    this.state.errorCode = code;
  }

  compensated(): void {
    this.moveTo('COMPENSATED');
  }

  compensationFailed(error: string): void {
    this.moveTo('COMPENSATION_FAILED', undefined, error);
    this.state.error = error;
  }

  /** RetryCompensation: back to COMPENSATING, failed compensations get fresh attempts. */
  retryCompensation(): void {
    if (this.state.status !== 'COMPENSATION_FAILED') throw new IllegalTransitionError(`saga ${this.requestId} (retry compensation)`, this.state.status, 'COMPENSATING');
    this.moveTo('COMPENSATING', undefined, 'compensation retried on request');
    for (const step of this.state.steps) {
      if (step.status !== 'COMPENSATION_FAILED') continue;
      step.compensationAttempts = 0;
      this.changedSteps.add(step.name);
    }
  }

  stepStarted(name: string): number {
    const step = this.moveStep(name, 'RUNNING');
    step.attempts += 1;
    delete step.runner;
    step.startedAt = new Date().toISOString();
    this.record('STEP_STARTED', name, `attempt ${step.attempts}`);
    return step.attempts;
  }

  /** `owner` runs the attempt on record, which another process recorded (and published). */
  stepTaken(name: string, owner: string): void {
    const step = this.step(name) as StepState;
    step.runner = owner;
    this.changedSteps.add(name);
    this.record('STEP_TAKEN', name, `attempt ${step.attempts} by ${owner}`);
  }

  stepSucceeded(name: string, output: unknown): void {
    const step = this.moveStep(name, 'SUCCEEDED');
    step.output = output;
    step.endedAt = new Date().toISOString();
    this.record('STEP_SUCCEEDED', name);
  }

  /** An attempt failed and another is scheduled. */
  stepRetrying(name: string, error: string, nextAt: Date): void {
    const step = this.moveStep(name, 'RETRYING');
    step.error = error;
    this.record('STEP_ATTEMPT_FAILED', name, `attempt ${step.attempts}: ${error}; next attempt at ${nextAt.toISOString()}`);
  }

  stepFailed(name: string, error: string): void {
    const step = this.moveStep(name, 'FAILED');
    step.error = error;
    step.endedAt = new Date().toISOString();
    this.record('STEP_FAILED', name, error);
  }

  compensationStarted(name: string): number {
    const step = this.moveStep(name, 'COMPENSATING');
    step.compensationAttempts += 1;
    this.record('COMPENSATION_STARTED', name, `attempt ${step.compensationAttempts}`);
    return step.compensationAttempts;
  }

  compensationSucceeded(name: string): void {
    this.moveStep(name, 'COMPENSATED');
    this.record('COMPENSATION_SUCCEEDED', name);
  }

  /** One failed attempt; the step stays COMPENSATING while attempts remain. */
  compensationAttemptFailed(name: string, error: string, final: boolean): void {
    const step = this.moveStep(name, final ? 'COMPENSATION_FAILED' : 'COMPENSATING');
    step.error = error;
    this.record('COMPENSATION_FAILED', name, error);
  }

  private moveTo(to: SagaStatus, step?: string, detail?: string): void {
    const from = this.state.status;
    if (!SAGA_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(`saga ${this.requestId}`, from, to);
    this.state.status = to;
    this.record(`SAGA_${to}`, step, detail);
  }

  private moveStep(name: string, to: StepStatus): StepState {
    const step = this.step(name) as StepState;
    if (!STEP_TRANSITIONS[step.status].includes(to)) {
      throw new IllegalTransitionError(`saga ${this.requestId} step ${name}`, step.status, to);
    }
    step.status = to;
    this.changedSteps.add(name);
    return step;
  }

  private record(type: string, step?: string, detail?: string): void {
    const at = new Date().toISOString();
    this.state.updatedAt = at;
    this.state.history.push({ seq: this.state.history.length + 1, at, type, step, detail, podId: this.podId });
  }
}
