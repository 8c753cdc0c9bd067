import type { Logger } from './logger';
import type { RetryPolicy } from './retry';
import type { SagaMode } from './saga';

/** What a step (node) gets: the smallest context it needs, and nothing it could corrupt. */
export interface StepContext<I = unknown> {
  readonly requestId: string;
  readonly facade: string;
  readonly step: string;
  readonly attempt: number;
  /** Unique per saga and step: upstreams use it to make their side effect happen once. */
  readonly idempotencyKey: string;
  readonly input: I;
  /** Outputs of the steps completed before this one, by step name. */
  readonly results: Readonly<Record<string, unknown>>;
  /** Aborted on the step's timeout, the saga's deadline, or when a sync caller goes away. */
  readonly signal: AbortSignal;
  /** When the saga must be done: pass it upstream as the call's deadline. */
  readonly deadline?: Date;
  readonly log: Logger;
}

export interface CompensationContext<I = unknown, O = unknown> extends StepContext<I> {
  /**
   * What the step being undone returned; undefined when its outcome was never recorded (it failed,
   * timed out, or the process died mid-step). The compensation must then find out whether the
   * step acted (e.g. by the idempotency key or request id) and tolerate that it never did.
   */
  readonly output: O | undefined;
}

export interface StepDefinition<I = unknown, O = unknown> {
  readonly name: string;
  /** Async and throttled facades: the topic the orchestrator publishes to itself to run this step. */
  readonly topic?: string;
  /** Overrides the engine's default retry policy for this step. */
  readonly retry?: Partial<RetryPolicy>;
  /** Upper bound for one attempt; overrides saga.stepTimeoutMs. */
  readonly timeoutMs?: number;
  run(ctx: StepContext<I>): Promise<O>;
  /** Undoes run(); must be idempotent, since it may be attempted more than once. */
  compensate?(ctx: CompensationContext<I, O>): Promise<void>;
}

export type FacadeMode = SagaMode;

export interface FacadeDefinition<I = unknown, R = unknown> {
  readonly name: string;
  readonly version: number;
  readonly mode: FacadeMode;
  /** Steps run in this order; each one depends on the one before. */
  readonly steps: readonly StepDefinition<I>[];
  /** Topic of the rollback consumer that compensates this facade's failed sagas. */
  readonly rollbackTopic: string;
  /** Checks and normalises the input; throws ValidationError naming the field. */
  parseInput(raw: unknown): I;
  /** Combines the steps' outputs into the saga's result. */
  result(results: Readonly<Record<string, unknown>>): R;
}

/** Checks a definition's shape once, at registration, so that mistakes fail at start-up. */
export function checkFacade(def: FacadeDefinition): void {
  const problems: string[] = [];
  if (!def.name) problems.push('name is empty');
  if (!Number.isInteger(def.version) || def.version < 1) problems.push('version must be an integer >= 1');
  if (def.steps.length === 0) problems.push('has no steps');
  if (!def.rollbackTopic) problems.push('rollbackTopic is empty');
  const names = new Set<string>();
  for (const step of def.steps) {
    if (names.has(step.name)) problems.push(`step ${step.name} is declared twice`);
    names.add(step.name);
    if (def.mode !== 'sync' && !step.topic) problems.push(`${def.mode} step ${step.name} has no topic`);
  }
  if (problems.length > 0) throw new Error(`facade ${def.name || '(unnamed)'}: ${problems.join('; ')}`);
}
