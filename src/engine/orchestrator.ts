import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Compensator } from './compensation';
import { describeFacade, type FacadeDescription, type NodeState, type SagaDescription } from './describe';
import { AlreadyExistsError, ConcurrencyError, ensureError, errorCode, NotFoundError, OrchestratorError, PoisonMessageError, StepError } from './errors';
import type { FacadeMode } from './facade';
import type { Logger } from './logger';
import { decodeMessage } from './messages';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './options';
import { outcomeOf } from './outcome-of';
import type { Wake } from './outcomes';
import { Recovery } from './recovery';
import type { FacadeRegistry } from './registry';
import { currentStep, SagaRuntime } from './runtime';
import { Saga, type SagaSnapshot, type StepStatus } from './saga';
import { StepRunner } from './steps';
import type { SagaFilter, SagaPage, SagaStore } from './store';
import { Throttle } from './throttle';
import type { Message, Transport } from './transport';

export { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './options';

export interface OrchestratorDeps {
  registry: FacadeRegistry;
  store: SagaStore;
  transport: Transport;
  logger: Logger;
  podId: string;
  /** Tells this start of the process from the previous ones under the same pod id (default: random). */
  incarnation?: string;
  /** The broadcast topic for saga outcomes (declared in topics/). */
  outcomeTopic: string;
  options?: Partial<EngineOptions>;
}

export interface CallOptions {
  /** The caller went away or its deadline passed. */
  signal?: AbortSignal;
  deadline?: Date;
}

/**
 * Runs facades: sync ones in-process, async and throttled ones step by step over the transport,
 * and the rollback consumer that compensates failed sagas. Every state change is written to the
 * store before the side effect it announces; leases and a recovery loop make sure that whatever
 * process dies, every saga ends COMPLETED or compensated. Knows nothing of Kafka, gRPC or SQL.
 * This class is the way in (calls and messages); steps.ts runs steps, compensation.ts undoes them,
 * recovery.ts holds the leases and takes sagas over, runtime.ts has what they share.
 */
export class Orchestrator {
  private readonly registry: FacadeRegistry;
  private readonly rt: SagaRuntime;
  private readonly steps: StepRunner;
  private readonly compensator: Compensator;
  private readonly recovery: Recovery;
  private readonly throttle: Throttle;
  private state: 'NEW' | 'RUNNING' | 'STOPPED' = 'NEW';

  constructor(deps: OrchestratorDeps) {
    this.registry = deps.registry;
    const options = { ...DEFAULT_ENGINE_OPTIONS, ...deps.options };
    const incarnation = deps.incarnation ?? randomBytes(4).toString('hex');
    this.rt = new SagaRuntime(deps.registry, deps.store, deps.transport, deps.logger, deps.podId, incarnation, deps.outcomeTopic, options);
    this.steps = new StepRunner(this.rt);
    this.compensator = new Compensator(this.rt);
    this.recovery = new Recovery(this.rt);
    this.throttle = new Throttle(options.throttle.maxConcurrent, options.throttle.maxQueue);
  }

  /** The lease holder: this run of the pod (`<podId>/<start id>`). */
  get owner(): string {
    return this.rt.owner;
  }

  get options(): EngineOptions {
    return this.rt.options;
  }

  /** Subscribes to the facades' topics and the outcome broadcast, then starts the recovery loop. */
  async start(): Promise<void> {
    if (this.state !== 'NEW') throw new Error(`orchestrator cannot start from ${this.state}`);
    await this.rt.transport.subscribe(this.registry.consumedTopics(), (m) => this.handle(m));
    await this.rt.transport.subscribe([this.rt.outcomeTopic], (m) => this.handle(m), { broadcast: true });
    this.state = 'RUNNING';
    await this.recovery.start();
  }

  /** Refuses new sagas and stops the recovery loop; messages in hand are finished by the transport. */
  stop(): void {
    this.state = 'STOPPED';
    this.recovery.stop();
  }

  /**
   * The last step of a shutdown, once nothing is in hand any more (calls answered, transport
   * drained): stops the recovery loop and hands this process's sagas to the other instances now.
   */
  async shutdown(): Promise<void> {
    this.stop();
    // Calls cut off by the gRPC grace period are being aborted: their sagas go to their rollback first.
    const inHand = Promise.allSettled([...this.rt.calls.values()]);
    await Promise.race([inHand, sleep(this.rt.options.stepTimeoutMs, undefined, { ref: false })]);
    if (this.rt.calls.size > 0) return; // still running: their leases lapse rather than being handed on mid-step
    await this.recovery.releaseLeases();
  }

  /** Every registered facade as data: mode, version, nodes and the graph as Mermaid text. */
  listFacades(): FacadeDescription[] {
    return this.registry.all().map(describeFacade);
  }

  async getSaga(requestId: string): Promise<SagaSnapshot | undefined> {
    return this.rt.store.get(requestId);
  }

  async listSagas(filter: SagaFilter): Promise<SagaPage> {
    return this.rt.store.list(filter);
  }

  /** Runs a sync facade to the end. A repeated request id gets the first run's result. */
  runSync(facade: string, requestId: string, rawInput: unknown, call: CallOptions = {}): Promise<unknown> {
    return this.once(requestId, async () => {
      const begun = await this.begin(facade, 'sync', requestId, rawInput, call.deadline ?? this.callDeadline());
      if (!begun.created) return this.awaitOutcome(requestId, call.signal);
      return this.steps.runInProcess(begun.saga, begun.def, call.signal);
    });
  }

  /** Starts an async facade: records the saga and publishes its first step. A repeated request id starts nothing. */
  async startAsync(facade: string, requestId: string, rawInput: unknown): Promise<string> {
    const begun = await this.begin(facade, 'async', requestId, rawInput, new Date(Date.now() + this.options.asyncDeadlineMs));
    if (begun.created) await this.rt.publishStepOrRetryLater(begun.saga, begun.def, begun.def.steps[0], 'prerecorded');
    return requestId;
  }

  /**
   * Runs a throttled facade: blocks like a sync call while the steps flow through the transport.
   * At most throttle.maxConcurrent at once per instance, then a bounded queue, then RESOURCE_EXHAUSTED.
   */
  runThrottled(facade: string, requestId: string, rawInput: unknown, call: CallOptions = {}): Promise<unknown> {
    return this.once(requestId, async () => {
      const release = await this.throttle.acquire(call.signal);
      // Only the caller that started the saga owns its deadline: a duplicate that goes away ends nothing.
      let owned = false;
      try {
        const begun = await this.begin(facade, 'throttled', requestId, rawInput, call.deadline ?? this.callDeadline());
        if (!begun.created) return await this.awaitOutcome(requestId, call.signal);
        owned = true;
        // Listening before the first step leaves, so that even a saga that ends at once wakes us.
        const wake = this.rt.outcomes.next(requestId);
        try {
          await this.rt.publishStepOrRetryLater(begun.saga, begun.def, begun.def.steps[0], 'prerecorded');
        } catch (err) {
          wake.cancel();
          throw err;
        }
        return await this.awaitOutcome(requestId, call.signal, wake);
      } catch (err) {
        if (owned && call.signal?.aborted) {
          // The caller's own reason: its deadline passed (DEADLINE_EXCEEDED), or it cancelled (CANCELLED).
          const why = callerGone(call.signal);
          await this.cancel(requestId, why).catch(() => undefined);
          throw new OrchestratorError(why.code, `saga ${requestId}: ${why.message}; it is being compensated`);
        }
        throw err;
      } finally {
        release();
      }
    });
  }

  /** CancelSaga: a running saga is compensated; a finished one is refused with FAILED_PRECONDITION. */
  async cancelSaga(requestId: string): Promise<SagaSnapshot> {
    await this.cancel(requestId, new StepError('CANCELLED', 'cancelled on request', false));
    return (await this.rt.store.get(requestId))!;
  }

  /** RetryCompensation: resumes the compensation of a COMPENSATION_FAILED saga. */
  async retryCompensation(requestId: string): Promise<SagaSnapshot> {
    const saga = await this.rt.load(requestId);
    if (saga.status !== 'COMPENSATION_FAILED') {
      throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is ${saga.status}, not COMPENSATION_FAILED`);
    }
    const def = this.registry.get(saga.facade);
    saga.retryCompensation();
    saga.own(this.owner);
    await this.rt.save(saga);
    await this.rt.publishRollbackOrRetryLater(saga, def);
    return saga.snapshot();
  }

  /*
   * The generic API (StartSaga, SendEvent, CompleteStep, FailStep, GetSaga's graph), ahead of the
   * graph engine that gives it its full meaning; until then, what a line of steps can do with it.
   */

  /** StartSaga: starts any startable facade (version 0 = the newest) and returns its request id at once. */
  async startSaga(facade: string, requestId: string, rawInput: unknown, version = 0): Promise<string> {
    const def = this.registry.get(facade);
    if (version !== 0 && version !== def.version) throw new NotFoundError(`facade ${facade} version ${version}`);
    if (def.mode === 'async') return this.startAsync(facade, requestId, rawInput);
    // Nobody awaits the run below: what it would refuse at once is refused here, to the caller.
    if (this.state !== 'RUNNING') throw new OrchestratorError('UNAVAILABLE', 'orchestrator is not running (starting or shutting down)', true);
    def.parseInput(rawInput);
    const run = def.mode === 'sync' ? this.runSync(facade, requestId, rawInput) : this.runThrottled(facade, requestId, rawInput);
    // The saga records its outcome (GetSaga); only a run that never recorded it is worth a line here.
    void run.catch((err: unknown) => {
      if (errorCode(err) !== 'SAGA_ABORTED') this.rt.log.warn('StartSaga: the run failed', { requestId, facade, error: ensureError(err).message });
    });
    return requestId;
  }

  /** SendEvent: resolves once the event is durably recorded. */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the graph engine's signature; no step waits for an event yet
  async sendEvent(requestId: string, event: string, payload: unknown, idempotencyKey?: string): Promise<void> {
    const saga = await this.rt.load(requestId);
    throw new OrchestratorError('FAILED_PRECONDITION', `facade ${saga.facade} has no node waiting for event ${event}`);
  }

  /** CompleteStep / FailStep: the outcome of an external step, reported by the service that ran it. */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the graph engine's signature; there are no external steps yet
  async completeStep(requestId: string, step: string, output: unknown): Promise<void> {
    await this.refuseReply(requestId, step);
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- as completeStep
  async failStep(requestId: string, step: string, error: string): Promise<void> {
    await this.refuseReply(requestId, step);
  }

  /** GetSaga's view of a saga's graph: each node's visits and kind, what it waits for, the path taken as Mermaid. */
  describeSaga(saga: SagaSnapshot): SagaDescription | undefined {
    const def = this.registry.find(saga.facade);
    if (!def || def.version !== saga.version) return undefined;
    const nodes = saga.steps.map((s): NodeState => ({
      name: s.name,
      kind: 'step',
      visits: s.status === 'PENDING' ? [] : [{
        visit: 1, status: s.status, attempts: s.attempts, output: s.output, error: s.error, startedAt: s.startedAt, endedAt: s.endedAt,
        // The saga's timer is its current step's next attempt while that step is RETRYING.
        ...(s.status === 'RETRYING' && saga.wakeAt ? { wakeAt: saga.wakeAt } : {}),
      }],
    }));
    return { nodes, waiting: [], mermaid: pathMermaid(describeFacade(def), saga.steps) };
  }

  /** Entry point for every consumed message. Throws PoisonMessageError for messages that can never be handled. */
  async handle(message: Message): Promise<void> {
    const msg = decodeMessage(message);
    if (msg.kind === 'outcome') {
      this.rt.outcomes.notify(msg.requestId);
      return;
    }
    const def = this.registry.find(msg.facade);
    if (!def) throw new PoisonMessageError(`unknown facade ${msg.facade}`);
    if (msg.kind === 'step') {
      const step = def.steps.find((s) => s.name === msg.node);
      if (!step) throw new PoisonMessageError(`facade ${def.name} has no node ${msg.node}`);
      if (step.topic !== message.topic) throw new PoisonMessageError(`node ${msg.node} is not bound to topic ${message.topic}`);
      await this.steps.handleStep(def, step, msg.requestId, msg.attempt);
    } else {
      if (def.rollbackTopic !== message.topic) throw new PoisonMessageError(`facade ${def.name} does not roll back on topic ${message.topic}`);
      const unknown = [msg.failedNode, ...msg.completed.map((c) => c.node)].find((n) => !def.steps.some((s) => s.name === n));
      if (unknown) throw new PoisonMessageError(`facade ${def.name} has no node ${unknown}`);
      await this.compensator.handleRollback(def, msg.requestId);
    }
  }

  /**
   * Records the new saga, with its first step as started in the same write (write ahead: sync
   * facades run it at once, the others publish it; see handleStep).
   */
  private async begin(facade: string, mode: FacadeMode, requestId: string, rawInput: unknown, deadline: Date) {
    if (this.state !== 'RUNNING') throw new OrchestratorError('UNAVAILABLE', 'orchestrator is not running (starting or shutting down)', true);
    const def = this.registry.get(facade);
    if (def.mode !== mode) throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} is ${def.mode}, not ${mode}`);
    const input = def.parseInput(rawInput);
    const saga = Saga.start({ requestId, facade, version: def.version, mode, input, steps: def.steps.map((s) => s.name), podId: this.rt.podId, owner: this.owner, deadline });
    saga.stepStarted(def.steps[0].name);
    const { created, saga: stored } = await this.rt.store.create(saga.view()).catch((err: unknown) => {
      // It may have been written all the same (the answer lost on the way back): not ours to renew.
      throw this.rt.release(requestId, err);
    });
    if (!created) {
      if (stored.facade !== facade) throw new AlreadyExistsError(`request id ${requestId} (used by facade ${stored.facade})`);
      this.rt.sagaLog(saga).info('duplicate request id: answering with the first run', { status: stored.status });
      return { def, created, saga: Saga.adopt(stored, this.rt.podId) };
    }
    saga.saved(stored.revision);
    this.rt.sagaLog(saga).info('saga started', { mode });
    return { def, created, saga };
  }

  /**
   * Waits until the saga leaves RUNNING, and answers as its first caller was answered. `started`: a
   * wake-up the creating caller registered before the first step was published; the saga is then
   * known to be RUNNING and is not read back at first.
   */
  private async awaitOutcome(requestId: string, signal?: AbortSignal, started?: Wake): Promise<unknown> {
    // The saga as this instance ended it, when it did: no need to read it back.
    let ended: SagaSnapshot | undefined;
    let known = started !== undefined;
    for (;;) {
      const wake = started ?? this.rt.outcomes.next(requestId);
      started = undefined;
      try {
        signal?.throwIfAborted();
        if (!known) {
          const saga = ended ?? (await this.rt.load(requestId)).view();
          if (saga.status !== 'RUNNING') return outcomeOf(saga);
        }
        known = false;
        ended = await Promise.race([wake.promise, sleep(this.options.outcomePollMs, undefined, { signal })])
          .catch(() => {
            signal?.throwIfAborted(); // the signal's reason, not a bare AbortError
            return undefined;
          });
      } finally {
        wake.cancel();
      }
    }
  }

  /** Every node of a line of steps runs in the orchestrator: no other service reports its outcome. */
  private async refuseReply(requestId: string, step: string): Promise<never> {
    const saga = await this.rt.load(requestId);
    if (!saga.steps.some((s) => s.name === step)) throw new NotFoundError(`node ${step} of saga ${requestId}`);
    throw new OrchestratorError('FAILED_PRECONDITION', `node ${step} of facade ${saga.facade} is a step run by the orchestrator, not an external step`);
  }

  private async cancel(requestId: string, reason: StepError): Promise<void> {
    for (let tries = 1; ; tries++) {
      const saga = await this.rt.load(requestId);
      if (saga.status === 'COMPENSATING') return;
      if (saga.status !== 'RUNNING') throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is already ${saga.status}`);
      const def = this.registry.get(saga.facade);
      try {
        await this.rt.abort(saga, def, currentStep(saga, def).name, reason);
        return;
      } catch (err) {
        if (!(err instanceof ConcurrencyError) || tries >= 5) throw err;
      }
    }
  }

  private async once(requestId: string, run: () => Promise<unknown>): Promise<unknown> {
    const running = this.rt.calls.get(requestId);
    if (running) return running;
    const promise = run().finally(() => this.rt.calls.delete(requestId));
    this.rt.calls.set(requestId, promise);
    return promise;
  }

  private callDeadline(): Date {
    return new Date(Date.now() + this.options.callDeadlineMs);
  }
}

/** Why a caller's signal fired, as the error its saga is aborted with. */
function callerGone(signal: AbortSignal): StepError {
  const reason = signal.reason as { name?: unknown } | undefined;
  const code = reason?.name === 'TimeoutError' ? 'DEADLINE_EXCEEDED' : errorCode(reason); // AbortSignal.timeout()'s reason
  if (code === 'DEADLINE_EXCEEDED') return new StepError(code, 'the caller deadline passed', false);
  return new StepError('CANCELLED', 'the caller cancelled the call', false);
}

/** Mermaid classes for the statuses a visited node can be in: the facade's graph with the path taken coloured. */
const PATH_CLASSES: readonly [string, string, readonly StepStatus[]][] = [
  ['done', 'fill:#c8e6c9,stroke:#2e7d32', ['SUCCEEDED']],
  ['active', 'fill:#fff3c4,stroke:#f9a825', ['RUNNING', 'RETRYING', 'WAITING', 'COMPENSATING']],
  ['failed', 'fill:#ffcdd2,stroke:#c62828', ['FAILED', 'COMPENSATION_FAILED']],
  ['undone', 'fill:#e0e0e0,stroke:#616161', ['COMPENSATED']],
];

/** The facade's flowchart (node ids n0, n1, … in node order) with each visited node classed by its status. */
function pathMermaid(facade: FacadeDescription, steps: SagaSnapshot['steps']): string {
  const status = new Map(steps.map((s) => [s.name, s.status]));
  const lines = [facade.mermaid];
  for (const [name, style, statuses] of PATH_CLASSES) {
    const ids = facade.nodes.flatMap((n, i) => (statuses.includes(status.get(n.name) ?? 'PENDING') ? [`n${i}`] : []));
    if (ids.length > 0) lines.push(`  classDef ${name} ${style}`, `  class ${ids.join(',')} ${name}`);
  }
  return lines.join('\n');
}
