import type { Logger } from './logger';

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
  /** Aborted when the caller goes away or the server drains. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface CompensationContext<I = unknown, O = unknown> extends StepContext<I> {
  /** What the step being undone returned. */
  readonly output: O;
}

export interface StepDefinition<I = unknown, O = unknown> {
  readonly name: string;
  /** Async facades: the topic the orchestrator publishes to itself to run this step. */
  readonly topic?: string;
  run(ctx: StepContext<I>): Promise<O>;
  /** Undoes run(); must be idempotent, since it may be attempted more than once. */
  compensate?(ctx: CompensationContext<I, O>): Promise<void>;
}

export type FacadeMode = 'sync' | 'async';

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
    if (def.mode === 'async' && !step.topic) problems.push(`async step ${step.name} has no topic`);
  }
  if (problems.length > 0) throw new Error(`facade ${def.name || '(unnamed)'}: ${problems.join('; ')}`);
}
