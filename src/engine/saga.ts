import { IllegalTransitionError } from './errors';

/** A saga's status only moves forward, along SAGA_TRANSITIONS. */
export type SagaStatus = 'RUNNING' | 'COMPLETED' | 'COMPENSATING' | 'COMPENSATED' | 'FAILED';

export type StepStatus =
  | 'PENDING'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'COMPENSATING'
  | 'COMPENSATED'
  | 'COMPENSATION_FAILED';

export const SAGA_TRANSITIONS: Readonly<Record<SagaStatus, readonly SagaStatus[]>> = {
  RUNNING: ['COMPLETED', 'COMPENSATING', 'FAILED'],
  COMPENSATING: ['COMPENSATED', 'FAILED'],
  COMPLETED: [],
  COMPENSATED: [],
  FAILED: [],
};

export const STEP_TRANSITIONS: Readonly<Record<StepStatus, readonly StepStatus[]>> = {
  PENDING: ['RUNNING'],
  // A retried attempt starts again from RUNNING.
  RUNNING: ['RUNNING', 'SUCCEEDED', 'FAILED'],
  SUCCEEDED: ['COMPENSATING'],
  FAILED: [],
  COMPENSATING: ['COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'],
  COMPENSATED: [],
  COMPENSATION_FAILED: ['COMPENSATING'],
};

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'FAILED'];

export interface StepState {
  name: string;
  status: StepStatus;
  attempts: number;
  compensationAttempts: number;
  output?: unknown;
  error?: string;
  startedAt?: string;
  endedAt?: string;
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
  version: number;
  status: SagaStatus;
  input: unknown;
  output?: unknown;
  error?: string;
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
  private constructor(private readonly state: SagaSnapshot, private readonly podId: string) {}

  static start(args: { requestId: string; facade: string; version: number; input: unknown; steps: readonly string[]; podId: string }): Saga {
    const now = new Date().toISOString();
    const saga = new Saga(
      {
        requestId: args.requestId,
        facade: args.facade,
        version: args.version,
        status: 'RUNNING',
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

  get requestId(): string { return this.state.requestId; }
  get facade(): string { return this.state.facade; }
  get status(): SagaStatus { return this.state.status; }
  get input(): unknown { return this.state.input; }
  get isTerminal(): boolean { return TERMINAL_STATUSES.includes(this.state.status); }

  step(name: string): Readonly<StepState> {
    const step = this.state.steps.find((s) => s.name === name);
    if (!step) throw new Error(`saga ${this.requestId} has no step ${name}`);
    return step;
  }

  snapshot(): SagaSnapshot {
    return structuredClone(this.state);
  }

  complete(output: unknown): void {
    this.moveTo('COMPLETED');
    this.state.output = output;
  }

  startCompensating(failedStep: string, error: string): void {
    this.moveTo('COMPENSATING', failedStep, error);
    this.state.error = `${failedStep}: ${error}`;
  }

  compensated(): void {
    this.moveTo('COMPENSATED');
  }

  fail(error: string): void {
    this.moveTo('FAILED', undefined, error);
    this.state.error = error;
  }

  stepStarted(name: string): number {
    const step = this.moveStep(name, 'RUNNING');
    step.attempts += 1;
    step.startedAt = new Date().toISOString();
    this.record('STEP_STARTED', name, `attempt ${step.attempts}`);
    return step.attempts;
  }

  stepSucceeded(name: string, output: unknown): void {
    const step = this.moveStep(name, 'SUCCEEDED');
    step.output = output;
    step.endedAt = new Date().toISOString();
    this.record('STEP_SUCCEEDED', name);
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
    return step;
  }

  private record(type: string, step?: string, detail?: string): void {
    const at = new Date().toISOString();
    this.state.updatedAt = at;
    this.state.history.push({ seq: this.state.history.length + 1, at, type, step, detail, podId: this.podId });
  }
}
