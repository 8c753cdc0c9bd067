import { NotFoundError, OrchestratorError, StepError, ValidationError } from './errors';
import { eventsOf, type FacadeDefinition } from './facade';
import type { Graph } from './graph';
import { checkPayload, checkText } from './payload';
import { currentStep, type SagaRuntime } from './runtime';
import { nodeOf, visitKey, visitOf, type Saga } from './saga';
import type { Advance } from './scheduler';
import type { StepRunner } from './steps';
import { ATTR, inSpan, sagaContext } from './tracing';

/**
 * How the outside world talks to a saga: events for its waits (SendEvent, the events topic) and
 * the answers of external steps (CompleteStep / FailStep, the step-replies topic). Each is on
 * record before it is acknowledged; a wait that accepts an event takes it at once, otherwise it is
 * kept in the saga's history and taken by the next wait that accepts it.
 */
export class Events {
  constructor(private readonly rt: SagaRuntime, private readonly steps: StepRunner) {}

  /**
   * Records the event and moves the saga on if a wait takes it. A repeated idempotency key has no
   * effect and is answered OK, whatever the saga became since (a client retrying after a lost
   * answer must not be told its event was refused). FAILED_PRECONDITION for a saga that is no
   * longer running; INVALID_ARGUMENT for an event the facade never waits for; MissingVersionError
   * when this process does not have the saga's facade version.
   */
  async send(requestId: string, event: string, payload: unknown, idempotencyKey?: string): Promise<void> {
    // Every way in (SendEvent, the console, the events topic) comes here: refused before anything is read or kept.
    checkPayload(payload, 'payload', this.rt.options.maxPayloadBytes);
    if (idempotencyKey !== undefined) checkText(idempotencyKey, 'idempotency_key');
    const saga = await this.rt.load(requestId);
    if (idempotencyKey !== undefined && saga.hasEvent(idempotencyKey)) {
      this.rt.sagaLog(saga).info('event with a known idempotency key: no effect', { event, idempotencyKey });
      return;
    }
    const def = this.rt.registry.require(saga.facade, saga.version);
    // In the saga's trace (the sender's call has its own): what the event sets off runs under this span.
    await inSpan(`event ${event}`, sagaContext(saga.traceParent), { [ATTR.requestId]: requestId, [ATTR.facade]: saga.facade, 'saga.event': event },
      () => this.deliver(saga, def, event, payload, idempotencyKey));
  }

  private async deliver(saga: Saga, def: FacadeDefinition, event: string, payload: unknown, idempotencyKey?: string): Promise<void> {
    const accepted = [...eventsOf(def), ...(def.cancelEvent ? [def.cancelEvent] : [])];
    // A strict facade answers an event of another of its versions as out of order: where the saga is, and what it takes now.
    const otherVersion = def.strictEvents === true && this.rt.registry.all().some((d) => d.name === def.name && eventsOf(d).includes(event));
    if (!accepted.includes(event) && !otherVersion) {
      throw new ValidationError('event', `facade ${def.name} never waits for ${event}; it accepts ${accepted.length > 0 ? accepted.join(', ') : 'no events'}`);
    }
    const move = await this.rt.update(saga, (s) => {
      // Before the status: the same delivery may have finished the saga (see send()).
      if (idempotencyKey !== undefined && s.hasEvent(idempotencyKey)) return undefined;
      requireRunning(s, `event ${event}`);
      if (event === def.cancelEvent) {
        // Accepted at any moment: the saga is compensated, the canceller's payload on record.
        s.eventReceived(event, payload, idempotencyKey);
        const error = new StepError('CANCELLED', `cancelled by event ${event}: ${JSON.stringify(payload)}`, false);
        return this.rt.conclude(s, def, { kind: 'fail', node: currentStep(s), error });
      }
      if (def.strictEvents) refuseUnlessAwaited(s, this.rt.graph(def), event, def.cancelEvent);
      refuseOverLimit(s, this.rt.options.maxEventsPerSaga);
      s.eventReceived(event, payload, idempotencyKey);
      const sched = this.rt.scheduler(def);
      const delivered = sched.deliver(s);
      if (delivered.kind === 'fail') return this.rt.conclude(s, def, delivered);
      // Kept for later: still a write, so that the event is on record before the answer.
      if (delivered.consumed === 0) return 'kept' as const;
      this.follow(s);
      return this.rt.conclude(s, def, sched.advance(s, delivered.picks));
    });
    if (move === undefined) this.rt.sagaLog(saga).info('event with a known idempotency key: no effect', { event, idempotencyKey });
    else if (move === 'kept') this.rt.sagaLog(saga).info('event kept until a wait takes it', { event });
    else await this.continue(saga, def, move);
  }

  /**
   * An external step's outcome, from the service that ran it, for `visit` (absent: the node's latest
   * visit). A visit settled already (told twice, or it timed out) keeps its first outcome and the
   * answer is OK, even once the saga has ended; a visit not waiting is FAILED_PRECONDITION naming it.
   */
  async reply(requestId: string, step: string, outcome: { output: unknown } | { error: string }, visit?: number): Promise<void> {
    // CompleteStep / FailStep and the step-replies topic: what the store would keep as the visit's output or error.
    if ('error' in outcome) checkPayload(outcome.error, 'error', this.rt.options.maxPayloadBytes);
    else checkPayload(outcome.output, 'output', this.rt.options.maxPayloadBytes);
    const saga = await this.rt.load(requestId);
    const def = this.rt.registry.require(saga.facade, saga.version);
    await inSpan(`reply ${step}`, sagaContext(saga.traceParent), { [ATTR.requestId]: requestId, [ATTR.facade]: saga.facade, [ATTR.node]: step },
      () => this.settle(saga, def, step, outcome, visit));
  }

  private async settle(saga: Saga, def: FacadeDefinition, step: string, outcome: { output: unknown } | { error: string }, visit?: number): Promise<void> {
    const requestId = saga.requestId;
    const node = this.rt.graph(def).byName.get(step);
    if (!node) throw new NotFoundError(`step ${step} of facade ${def.name}`);
    if (node.kind !== 'external') throw new OrchestratorError('FAILED_PRECONDITION', `step ${step} of facade ${def.name} is not an external step: the orchestrator runs it`);
    const move = await this.rt.update(saga, (s) => {
      // Before the status: the first answer may have finished the saga.
      if (settledVisit(s, step, visit)) return undefined;
      requireRunning(s, `the outcome of ${step}`);
      const key = visit === undefined ? s.latest(step)?.name : visitKey(step, visit);
      const current = key === undefined ? undefined : s.find(key);
      if (!current || current.status !== 'WAITING') {
        const which = key === undefined ? `step ${step}` : `visit ${visitOf(key)} of step ${step}`;
        throw new OrchestratorError('FAILED_PRECONDITION', `${which} of saga ${requestId} is not waiting for its outcome (${current?.status ?? 'not started'})`);
      }
      const sched = this.rt.scheduler(def);
      if ('error' in outcome) {
        const error = new OrchestratorError('FAILED_PRECONDITION', `${step}: ${outcome.error}`);
        s.stepFailed(current.name, outcome.error);
        return this.rt.conclude(s, def, { kind: 'fail', node: step, error });
      }
      const done = sched.succeed(s, current.name, outcome.output);
      this.follow(s);
      return this.rt.conclude(s, def, done.kind === 'fail' ? done : sched.advance(s, done.picks));
    });
    if (move === undefined) this.rt.sagaLog(saga, step).info('outcome of a step already settled: no effect', { visit });
    else await this.continue(saga, def, move);
  }

  /**
   * The lease follows the work: the instance that moves a saga on drives what comes next (a
   * throttled saga stays with the instance holding its caller).
   */
  private follow(saga: Saga): void {
    if (saga.mode !== 'throttled' && saga.owner !== this.rt.owner) saga.own(this.rt.owner);
  }

  /**
   * After a move recorded here: publish what it started; in-process facades run their started
   * steps in this process, in the background (whoever waits for the saga polls the store).
   */
  async continue(saga: Saga, def: FacadeDefinition, move: Advance): Promise<void> {
    await this.rt.effects(saga, def, move);
    if (move.kind !== 'continue' || def.mode !== 'sync' || move.started.steps.length === 0) return;
    this.rt.inBackground(saga.requestId, () => this.steps.drive(saga, def, move.started.steps));
  }
}

/** A one-way state machine takes only what one of its current waits accepts; nothing is recorded otherwise. */
function refuseUnlessAwaited(saga: Saga, graph: Graph, event: string, cancelEvent?: string): void {
  const waiting = saga.steps.filter((v) => v.status === 'WAITING').map((v) => graph.node(nodeOf(v.name)));
  const now = [...new Set([...waiting.flatMap((n) => (n.kind === 'wait' ? n.events : [])), ...(cancelEvent ? [cancelEvent] : [])])];
  if (now.includes(event)) return;
  const at = waiting.length > 0 ? `waiting at ${waiting.map((n) => n.name).join(', ')}` : `busy at ${currentStep(saga)}`;
  throw new OrchestratorError('FAILED_PRECONDITION', `saga ${saga.requestId} is ${at}: it does not accept ${event} now; it accepts ${now.length > 0 ? now.join(', ') : 'no event'}`);
}

/** Statuses of a visit whose outcome is in (or that timed out): a later answer changes nothing. */
const SETTLED: readonly string[] = ['SUCCEEDED', 'FAILED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];

/** The visit an answer is for (absent: the node's latest) has its outcome already. */
export function settledVisit(saga: Saga, step: string, visit?: number): boolean {
  const current = visit === undefined ? saga.latest(step) : saga.find(visitKey(step, visit));
  return current !== undefined && SETTLED.includes(current.status);
}

/** Every read loads a saga's whole history: a sender must not grow it without bound. */
function refuseOverLimit(saga: Saga, max: number): void {
  const received = saga.view().history.reduce((n, e) => (e.type === 'EVENT_RECEIVED' ? n + 1 : n), 0);
  if (received >= max) {
    throw new OrchestratorError('RESOURCE_EXHAUSTED', `saga ${saga.requestId} has taken in ${received} events, its limit (limits.maxEventsPerSaga: ${max}); it takes no more (a cancel event still ends it)`);
  }
}

function requireRunning(saga: Saga, what: string): void {
  if (saga.status !== 'RUNNING') {
    throw new OrchestratorError('FAILED_PRECONDITION', `saga ${saga.requestId} is ${saga.status}: ${what} can no longer change it`);
  }
}
