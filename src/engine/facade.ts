import type { Logger } from './logger';
import type { RetryPolicy } from './retry';
import type { SagaMode } from './saga';

/** What a node gets: the smallest context it needs, and nothing it could corrupt. */
export interface StepContext<I = unknown> {
  readonly requestId: string;
  readonly facade: string;
  /** The node's name. */
  readonly step: string;
  /** Which visit of the node this is (1 unless a loop came back to it). */
  readonly visit: number;
  readonly attempt: number;
  /** Unique per saga, node and visit: upstreams use it to make their side effect happen once. */
  readonly idempotencyKey: string;
  readonly input: I;
  /** Outputs of the nodes completed before this one (their latest visit), by node name. */
  readonly results: Readonly<Record<string, unknown>>;
  /** Aborted on the step's timeout, the saga's deadline, a failed sibling, or when a sync caller goes away. */
  readonly signal: AbortSignal;
  /** When the saga must be done: pass it upstream as the call's deadline. */
  readonly deadline?: Date;
  readonly log: Logger;
}

export interface CompensationContext<I = unknown, O = unknown> extends StepContext<I> {
  /**
   * What the visit being undone returned; undefined when its outcome was never recorded (it failed,
   * timed out, or the process died mid-step). The compensation must then find out whether the
   * step acted (e.g. by the idempotency key or request id) and tolerate that it never did.
   */
  readonly output: O | undefined;
}

/** What a branch decides from: the node's output, the saga's input and every result so far. */
export interface BranchContext<I = unknown> {
  readonly requestId: string;
  readonly input: I;
  readonly results: Readonly<Record<string, unknown>>;
  /** How many times this node has been visited, this visit included. */
  readonly visit: number;
}

/** Edges common to every kind of node. */
interface NodeCommon<I> {
  readonly name: string;
  /** Runs once every node named here has succeeded (fan-in); nodes without `after` or a branch to them start the saga. */
  readonly after?: readonly string[];
  /**
   * A branch: the nodes `next` may choose from (also earlier ones: a loop). Declared so that the
   * graph can be checked and drawn before it runs. Nodes that list this one in `after` and are
   * not chosen are SKIPPED.
   */
  readonly branches?: readonly string[];
  /**
   * Picks what runs next from this node's output: one of `branches`, or undefined to end this
   * path. Throwing fails the node (and the saga is compensated) with that error.
   */
  next?(output: unknown, ctx: BranchContext<I>): string | undefined;
  /** How many times a loop may come back to this node before the saga fails (default: saga.maxVisits). */
  readonly maxVisits?: number;
}

/** Runs work in the orchestrator: in-process (sync) or from its own topic (async, throttled). */
export interface StepDefinition<I = unknown, O = unknown> extends NodeCommon<I> {
  readonly kind?: 'step';
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

/** A duration that may come from the saga's input (e.g. a timeout the client chose). */
export type Duration<I> = number | DurationOf<I>['fn'];
// A method's parameters are bivariant: a facade typed by its input stays assignable to FacadeDefinition<unknown>.
interface DurationOf<I> { fn(input: I, results: Readonly<Record<string, unknown>>): number | undefined }

/**
 * Parks the saga until one of `events` arrives (SendEvent or the events topic). With one event,
 * the output is its payload; with several (a race), `{ event, payload }`, and on a timeout
 * `{ event: 'timeout' }` so that `next` can pick a branch for each. A single-event wait whose
 * timeout passes fails with DEADLINE_EXCEEDED.
 */
export interface WaitDefinition<I = unknown> extends NodeCommon<I> {
  readonly kind: 'wait';
  readonly events: readonly string[];
  /** From the visit's start; none: waits as long as the saga's deadline allows. */
  readonly timeoutMs?: Duration<I>;
}

/** A durable delay: no timer in memory, any instance wakes it. Output: null. */
export interface SleepDefinition<I = unknown> extends NodeCommon<I> {
  readonly kind: 'sleep';
  readonly delayMs: Duration<I>;
}

/**
 * Work done by another service: the orchestrator publishes a command to `topic`, and the node
 * succeeds or fails when that service reports back (CompleteStep / FailStep, or the step-replies
 * topic), or fails with DEADLINE_EXCEEDED after `timeoutMs`.
 */
export interface ExternalStepDefinition<I = unknown, O = unknown> extends NodeCommon<I> {
  readonly kind: 'external';
  /** Where the command goes (declared in topics/); the worker consuming it is not the orchestrator. */
  readonly topic: string;
  readonly timeoutMs?: Duration<I>;
  /** The command's payload (default: `{ input, results }`). */
  command?(ctx: Omit<StepContext<I>, 'signal' | 'log'>): unknown;
  compensate?(ctx: CompensationContext<I, O>): Promise<void>;
}

export type NodeDefinition<I = unknown> = StepDefinition<I> | WaitDefinition<I> | SleepDefinition<I> | ExternalStepDefinition<I>;
export type NodeKind = 'step' | 'wait' | 'race' | 'sleep' | 'external';

/** The kind ListFacades and GetSaga show: a wait for several events is a race. */
export function kindOf(node: NodeDefinition): NodeKind {
  if (node.kind === 'wait') return node.events.length > 1 ? 'race' : 'wait';
  return node.kind ?? 'step';
}

export type FacadeMode = SagaMode;

export interface FacadeDefinition<I = unknown, R = unknown> {
  readonly name: string;
  readonly version: number;
  readonly mode: FacadeMode;
  /** The graph: each node runs after the ones in its `after`, or when a branch picks it. */
  readonly nodes: readonly NodeDefinition<I>[];
  /** Topic of the rollback consumer that compensates this facade's failed sagas. */
  readonly rollbackTopic: string;
  /** May be started by the generic StartSaga call (default true). */
  readonly startable?: boolean;
  /**
   * An event every wait accepts, at any moment of a running saga ("anyone can cancel"): the saga is
   * compensated with reason `cancelled`, the event's payload in its history.
   */
  readonly cancelEvent?: string;
  /**
   * A one-way state machine: an event that none of the saga's current waits accepts is refused
   * (FAILED_PRECONDITION naming the saga's state and the events it accepts now) and nothing is
   * recorded, rather than kept for a later wait.
   */
  readonly strictEvents?: boolean;
  /** From the saga's start: past it the saga is compensated with reason `expired` (default: the engine's saga deadline). */
  readonly expiresAfterMs?: Duration<I>;
  /**
   * How long this facade's finished sagas (COMPLETED, COMPENSATED) are kept, overriding
   * saga.retentionMs (0: forever). Of several versions, the newest one's applies.
   */
  readonly retentionMs?: number;
  /** Checks and normalises the input; throws ValidationError naming the field. */
  parseInput(raw: unknown): I;
  /** Combines the nodes' outputs (latest visit of each) into the saga's result. */
  result(results: Readonly<Record<string, unknown>>): R;
}

export function isStep(node: NodeDefinition): node is StepDefinition {
  return node.kind === undefined || node.kind === 'step';
}

/** Compensable: a step or an external step with a compensation. */
export function compensationOf(node: NodeDefinition): ((ctx: CompensationContext) => Promise<void>) | undefined {
  if (node.kind === 'wait' || node.kind === 'sleep' || !node.compensate) return undefined;
  const step = node;
  return (ctx) => step.compensate!(ctx);
}

/** Every event some wait of the facade accepts. */
export function eventsOf(def: FacadeDefinition): string[] {
  return [...new Set(def.nodes.flatMap((n) => (n.kind === 'wait' ? n.events : [])))];
}
