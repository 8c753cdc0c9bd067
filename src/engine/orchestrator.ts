import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Compensator } from './compensation';
import { describeFacade, describeSaga, type FacadeDescription, type SagaDescription } from './describe';
import { AlreadyExistsError, ConcurrencyError, errorCode, OrchestratorError, PoisonMessageError, SagaAbortedError, StepError } from './errors';
import { Events } from './events';
import { fingerprintOf, firstDifference } from './fingerprint';
import { isStep, type FacadeDefinition, type FacadeMode } from './facade';
import { Handback } from './handback';
import { Inbound } from './inbound';
import type { Logger } from './logger';
import type { EngineMetrics } from './metrics';
import { decodeMessage, type RollbackMessage, type StepMessage } from './messages';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './options';
import { outcomeOf } from './outcome-of';
import { checkPayload } from './payload';
import type { Wake } from './outcomes';
import { Recovery } from './recovery';
import { Retention, sagaNotFound } from './retention';
import type { FacadeRegistry } from './registry';
import { currentStep, SagaRuntime } from './runtime';
import { nodeOf, Saga, type SagaSnapshot, type SagaStatus } from './saga';
import type { Started } from './scheduler';
import { StepRunner } from './steps';
import type { SagaFilter, SagaPage, SagaStore } from './store';
import { Throttle } from './throttle';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { ATTR, contextOf, inSpan, TRACEPARENT, traceparentOf } from './tracing';
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
  /** Where events for sagas arrive (SendEvent's twin on Kafka); absent: only SendEvent. */
  eventTopic?: string;
  /** Where external steps' workers answer (CompleteStep / FailStep's twin); absent: only those calls. */
  replyTopic?: string;
  options?: Partial<EngineOptions>;
  /** Where saga transitions and throttle refusals are reported (default: nowhere). */
  metrics?: EngineMetrics;
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
  private readonly retention: Retention;
  private readonly events: Events;
  private readonly throttle: Throttle;
  private readonly handback: Handback;
  private readonly inbound: Inbound;
  private readonly eventTopic?: string;
  private state: 'NEW' | 'RUNNING' | 'STOPPED' = 'NEW';

  constructor(deps: OrchestratorDeps) {
    this.registry = deps.registry;
    const options = { ...DEFAULT_ENGINE_OPTIONS, ...deps.options };
    const incarnation = deps.incarnation ?? randomBytes(4).toString('hex');
    this.rt = new SagaRuntime(deps.registry, deps.store, deps.transport, deps.logger, deps.podId, incarnation, deps.outcomeTopic, deps.replyTopic ?? '', options, deps.metrics);
    this.eventTopic = deps.eventTopic;
    this.steps = new StepRunner(this.rt);
    this.compensator = new Compensator(this.rt);
    this.events = new Events(this.rt, this.steps);
    this.recovery = new Recovery(this.rt, this.events);
    this.retention = new Retention(deps.store, (facade) => deps.registry.find(facade)?.retentionMs, {
      retentionMs: options.retentionMs, intervalMs: options.retentionIntervalMs, batch: options.retentionBatch, pauseMs: options.retentionPauseMs,
    }, deps.logger);
    this.throttle = new Throttle(options.throttle.maxConcurrent, options.throttle.maxQueue);
    this.handback = new Handback(this.rt, (def, topic, msg) => this.handleWork(def, topic, msg), this.events);
    this.inbound = new Inbound(this.events, this.handback);
  }

  /** The lease holder: this run of the pod (`<podId>/<start id>`). */
  get owner(): string {
    return this.rt.owner;
  }

  get options(): EngineOptions {
    return this.rt.options;
  }

  /** Throttled calls running and waiting for a slot on this instance, now. */
  throttleLoad(): { running: number; queued: number } {
    return { running: this.throttle.running, queued: this.throttle.queued };
  }

  /** open(), then join(), then the recovery loop's first pass: everything is running when it resolves. */
  async start(): Promise<void> {
    await this.open();
    await this.join();
    await this.recovery.firstPass();
  }

  /**
   * Takes calls from here on: holds the pod id, checks the registered versions against the store and
   * starts the recovery loop (leases renewed from now on; its first pass runs in the background).
   * Nothing here reads more than a row per facade version: a process with a million sagas in its
   * store serves as soon as one with none. The consumers are not in yet (join()): what a call
   * publishes meanwhile waits in its topic, and outcomes that do not come as messages are read from
   * the store.
   */
  async open(): Promise<void> {
    if (this.state !== 'NEW') throw new Error(`orchestrator cannot start from ${this.state}`);
    await Promise.all([this.rt.store.holdPodId?.(this.rt.podId), this.pinVersions()]);
    this.state = 'RUNNING';
    this.recovery.start();
    this.retention.start();
  }

  /**
   * Subscribes to the facades' topics and the outcome broadcast; resolves once the consumer groups
   * have joined (after a kill -9, Kafka holds the dead member's partitions until its session times
   * out). Then warns, in the background, about unfinished sagas of versions this process lacks.
   */
  async join(): Promise<void> {
    const inbound = [this.eventTopic, this.rt.replyTopic].filter((t): t is string => t !== undefined && t !== '');
    await Promise.all([
      this.rt.transport.subscribe([...this.registry.consumedTopics(), ...inbound], (m) => this.handle(m)),
      this.rt.transport.subscribe([this.rt.outcomeTopic], (m) => this.handle(m), { broadcast: true }),
    ]);
    // A count over every unfinished saga: never on the way to serving.
    void this.warnUnknownVersions().catch((err: unknown) => this.rt.log.warn('counting unfinished sagas failed', { error: String(err) }));
  }

  private async warnUnknownVersions(): Promise<void> {
    const unknown = (await this.rt.store.countUnfinished()).filter((c) => !this.registry.find(c.facade, c.version));
    if (unknown.length > 0) {
      this.rt.log.warn('unfinished sagas of versions this process does not have: left to an instance that has them',
        { sagas: unknown.reduce((n, c) => n + c.sagas, 0), versions: unknown.map((c) => `${c.facade}@${c.version}: ${c.sagas}`) });
    }
  }

  /** Each registered version's graph must be the one stored when that version first ran. */
  private async pinVersions(): Promise<void> {
    await Promise.all(this.registry.all().map(async (def) => {
      const here = fingerprintOf(def);
      const stored = await this.rt.store.pinVersion(def.name, def.version, here);
      if (stored !== here) {
        throw new Error(`facade ${def.name} version ${def.version} differs from the graph stored when that version first ran `
          + `(${firstDifference(stored, here)}): give the changed flow a new version number`);
      }
    }));
  }

  /** Refuses new sagas and stops the recovery loop; messages in hand are finished by the transport. */
  stop(): void {
    this.state = 'STOPPED';
    this.recovery.stop();
    void this.retention.stop();
  }

  /**
   * The last step of a shutdown, once nothing is in hand any more (calls answered, transport
   * drained): stops the recovery loop and hands this process's sagas to the other instances now.
   */
  async shutdown(): Promise<void> {
    this.state = 'STOPPED';
    // Leases are renewed while work is in hand: another instance taking these sagas now would run the same steps again.
    // A claim under way would take sagas after the release below: it ends first, and what it started is in hand.
    const claims = this.recovery.stopClaims();
    await this.retention.stop();
    const until = sleep(this.rt.options.stepTimeoutMs, undefined, { ref: false });
    await Promise.race([claims, until]);
    // Calls cut off by the gRPC grace period are being aborted: their sagas go to their rollback first.
    await Promise.race([Promise.allSettled(this.rt.inHand()), until]);
    this.recovery.stop();
    if (this.rt.inHand().length > 0) return; // still running: their leases lapse rather than being handed on mid-step
    await this.recovery.releaseLeases();
  }

  /**
   * Every registered facade version as data (mode, nodes, the graph as Mermaid text) with how many
   * unfinished sagas run on it, and the versions of sagas in the store that this process does not
   * have (no nodes: another instance has them); a version with none running can be retired.
   */
  async listFacades(): Promise<(FacadeDescription & { runningSagas: number })[]> {
    const counts = await this.rt.store.countUnfinished();
    const running = (name: string, version: number) => counts.find((c) => c.facade === name && c.version === version)?.sagas ?? 0;
    const here = this.registry.all().map((def) => ({ ...describeFacade(def), runningSagas: running(def.name, def.version) }));
    const elsewhere = counts.filter((c) => !this.registry.find(c.facade, c.version))
      .map((c) => ({ name: c.facade, mode: 'unknown' as FacadeDescription['mode'], version: c.version, nodes: [], mermaid: '', runningSagas: c.sagas }));
    return [...here, ...elsewhere];
  }

  /** How many sagas of each facade version are in each status, finished ones included (the console's facades page). */
  async countSagas(): Promise<{ facade: string; version: number; status: SagaStatus; sagas: number }[]> {
    return this.rt.store.countByStatus();
  }

  /** Why this process never touches the saga (a version it does not have), or undefined when it can drive it. */
  leftAlone(saga: Pick<SagaSnapshot, 'facade' | 'version'>): string | undefined {
    if (this.registry.find(saga.facade, saga.version)) return undefined;
    const have = this.registry.versions(saga.facade);
    const has = have.length === 0 ? 'no version of it' : `version${have.length > 1 ? 's' : ''} ${have.join(', ')}`;
    return `this instance does not have ${saga.facade} version ${saga.version} (it has ${has}): an instance that has it drives this saga`;
  }

  /** GetSaga's view of a saga's graph: each node's visits and kind, what it waits for, the path taken as Mermaid. */
  describeSaga(saga: SagaSnapshot): SagaDescription | undefined {
    const def = this.registry.find(saga.facade, saga.version);
    return def && describeSaga(saga, this.registry.graph(def));
  }

  async getSaga(requestId: string): Promise<SagaSnapshot | undefined> {
    return this.rt.store.get(requestId);
  }

  /** NOT_FOUND for a saga the store does not have, saying that finished sagas are deleted after the retention. */
  sagaNotFound(requestId: string): Error {
    return sagaNotFound(requestId, this.rt.options.retentionMs);
  }

  /** One retention pass now (the loop runs one every retentionIntervalMs): what it deleted. */
  purgeFinished(now?: number): Promise<{ deleted: number; busy: boolean }> {
    return this.retention.pass(now);
  }

  async listSagas(filter: SagaFilter): Promise<SagaPage> {
    return this.rt.store.list(filter);
  }

  /** Runs a sync facade to the end. A repeated request id gets the first run's result. */
  runSync(facade: string, requestId: string, rawInput: unknown, call: CallOptions = {}): Promise<unknown> {
    return this.once(requestId, () => this.traced(facade, requestId, async () => {
      const begun = await this.begin(facade, 'sync', requestId, rawInput, call.deadline ?? this.callDeadline());
      if (!begun.created) return this.awaitOutcome(requestId, call.signal);
      const { saga, def } = begun;
      try {
        await this.rt.send(saga, def, begun.started, false);
        const ended = await this.steps.drive(saga, def, begun.started.steps, call.signal);
        // Parked on a wait, a sleep or a reply: whichever instance moves it on, the store says when it ends.
        if (ended === 'parked') return await this.awaitOutcome(requestId, call.signal);
        return outcomeOf(saga.view());
      } catch (err) {
        if (err instanceof SagaAbortedError || err instanceof ConcurrencyError) throw err;
        if (call.signal?.aborted && err === call.signal.reason) throw err;
        // Anything else (the store failed mid-way): recovery compensates it once its lease lapses.
        throw this.rt.release(requestId, err);
      }
    }));
  }

  /** Starts an async facade: records the saga and publishes its first steps. A repeated request id starts nothing. */
  startAsync(facade: string, requestId: string, rawInput: unknown): Promise<string> {
    return this.traced(facade, requestId, async () => {
      const begun = await this.begin(facade, 'async', requestId, rawInput, new Date(Date.now() + this.options.asyncDeadlineMs));
      if (begun.created) await this.rt.send(begun.saga, begun.def, begun.started, true);
      return requestId;
    });
  }

  /**
   * The span of the call that starts a saga: the saga's root (under the caller's span, when it
   * sent one); begin() stores its context with the saga, so every later span joins its trace.
   */
  private traced<T>(facade: string, requestId: string, fn: () => Promise<T>): Promise<T> {
    return inSpan(`saga ${facade}`, context.active(), { [ATTR.facade]: facade, [ATTR.requestId]: requestId }, fn);
  }

  /**
   * StartSaga: starts any startable facade (version 0 = the newest) and returns its request id at
   * once. An in-process facade runs in the background here; the others run from their topics.
   */
  startSaga(facade: string, requestId: string, rawInput: unknown, version = 0): Promise<string> {
    return this.traced(facade, requestId, async () => {
      const def = this.registry.get(facade, version);
      if (def.startable === false) throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} cannot be started by StartSaga: use its own service`);
      const begun = await this.begin(facade, def.mode, requestId, rawInput, new Date(Date.now() + this.options.asyncDeadlineMs), true, def.version);
      if (!begun.created) return requestId;
      await this.rt.send(begun.saga, def, begun.started, def.mode !== 'sync');
      if (def.mode === 'sync' && begun.started.steps.length > 0) this.rt.inBackground(requestId, () => this.steps.drive(begun.saga, def, begun.started.steps));
      return requestId;
    });
  }

  /** SendEvent: resolves once the event is durably recorded (and taken by a wait, if one accepts it). */
  async sendEvent(requestId: string, event: string, payload: unknown, idempotencyKey?: string): Promise<void> {
    await this.events.send(requestId, event, payload, idempotencyKey);
  }

  /**
   * CompleteStep / FailStep: the outcome of an external step, reported by the service that ran it,
   * for one visit of it (absent: its latest visit).
   */
  async completeStep(requestId: string, step: string, output: unknown, visit?: number): Promise<void> {
    await this.events.reply(requestId, step, { output }, visit);
  }

  async failStep(requestId: string, step: string, error: string, visit?: number): Promise<void> {
    await this.events.reply(requestId, step, { error }, visit);
  }

  /**
   * Runs a throttled facade: blocks like a sync call while the steps flow through the transport.
   * At most throttle.maxConcurrent at once per instance, then a bounded queue, then RESOURCE_EXHAUSTED.
   */
  runThrottled(facade: string, requestId: string, rawInput: unknown, call: CallOptions = {}): Promise<unknown> {
    return this.once(requestId, () => this.traced(facade, requestId, async () => {
      const release = await this.throttle.acquire(call.signal).catch((err: unknown) => {
        if (errorCode(err) === 'RESOURCE_EXHAUSTED') this.rt.metrics.throttleRejected(facade);
        throw err;
      });
      // Only the caller that started the saga owns its deadline: a duplicate that goes away ends nothing.
      let owned = false;
      try {
        const begun = await this.begin(facade, 'throttled', requestId, rawInput, call.deadline ?? this.callDeadline());
        if (!begun.created) return await this.awaitOutcome(requestId, call.signal);
        owned = true;
        // Listening before the first step leaves, so that even a saga that ends at once wakes us.
        const wake = this.rt.outcomes.next(requestId);
        try {
          await this.rt.send(begun.saga, begun.def, begun.started, true);
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
    }));
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
    const def = this.registry.get(saga.facade, saga.version);
    saga.retryCompensation();
    saga.own(this.owner);
    await this.rt.save(saga);
    await this.rt.publishRollbackOrRetryLater(saga, def);
    return saga.snapshot();
  }

  /** Entry point for every consumed message. Throws PoisonMessageError for messages that can never be handled. */
  handle(message: Message): Promise<void> {
    // Under the span that sent it, never under whatever was active when it was delivered.
    return context.with(contextOf(message.headers[TRACEPARENT]) ?? ROOT_CONTEXT, () => this.dispatch(message));
  }

  private async dispatch(message: Message): Promise<void> {
    if (this.eventTopic && message.topic === this.eventTopic) return this.inbound.event(message);
    if (this.rt.replyTopic && message.topic === this.rt.replyTopic) return this.inbound.reply(message);
    const msg = decodeMessage(message);
    if (msg.kind === 'outcome') {
      this.rt.outcomes.notify(msg.requestId);
      return;
    }
    if (msg.kind === 'handback') {
      await this.handback.takeBack(msg);
      return;
    }
    const def = this.registry.find(msg.facade, msg.version);
    // A mixed deployment: an instance that has the version handles it.
    if (!def) return this.handback.handBack(message.topic, msg);
    await this.handleWork(def, message.topic, msg);
  }

  /** A step or rollback message of a facade version this process has, from `topic` (or handed back as from it). */
  private async handleWork(def: FacadeDefinition, topic: string, msg: StepMessage | RollbackMessage): Promise<void> {
    if (msg.kind === 'step') {
      const step = this.registry.graph(def).byName.get(msg.node);
      if (!step) throw new PoisonMessageError(`facade ${def.name} has no node ${msg.node}`);
      if (!isStep(step)) throw new PoisonMessageError(`node ${msg.node} of facade ${def.name} is not run by the orchestrator (${step.kind})`);
      if (step.topic !== topic) throw new PoisonMessageError(`node ${msg.node} is not bound to topic ${topic}`);
      await this.steps.handleStep(def, step, msg.requestId, msg.visit ?? 1, msg.attempt);
    } else {
      if (def.rollbackTopic !== topic) throw new PoisonMessageError(`facade ${def.name} does not roll back on topic ${topic}`);
      const graph = this.registry.graph(def);
      const unknown = [msg.failedNode, ...msg.completed.map((c) => c.node)].find((n) => !graph.byName.has(nodeOf(n)));
      if (unknown) throw new PoisonMessageError(`facade ${def.name} has no node ${unknown}`);
      await this.compensator.handleRollback(def, msg.requestId);
    }
  }

  /**
   * Records the new saga, with its first step as started in the same write (write ahead: sync
   * facades run it at once, the others publish it; see handleStep).
   */
  private async begin(facade: string, mode: FacadeMode, requestId: string, rawInput: unknown, callDeadline: Date, detached = false, version = 0) {
    if (this.state !== 'RUNNING') throw new OrchestratorError('UNAVAILABLE', 'orchestrator is not running (starting or shutting down)', true);
    const def = this.registry.get(facade, version);
    if (def.mode !== mode) throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} is ${def.mode}, not ${mode}`);
    const input = def.parseInput(rawInput);
    // What is stored, as parsed: the same check for a facade's own gRPC call as for StartSaga.
    checkPayload(input, 'input', this.options.maxPayloadBytes);
    // A facade's own expiry replaces the engine's deadline: past it, the saga is compensated as expired.
    const expiresMs = typeof def.expiresAfterMs === 'function' ? def.expiresAfterMs(input, {}) : def.expiresAfterMs;
    const deadline = expiresMs === undefined ? callDeadline : new Date(Date.now() + expiresMs);
    trace.getActiveSpan()?.setAttributes({ [ATTR.version]: def.version, [ATTR.mode]: mode });
    const saga = Saga.start({
      requestId, facade, version: def.version, mode, input, steps: def.nodes.map((n) => n.name), podId: this.rt.podId, owner: this.owner, deadline, detached,
      traceParent: traceparentOf(),
    });
    const first = this.rt.conclude(saga, def, this.rt.scheduler(def).advance(saga));
    if (first.kind !== 'continue') throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} ends before any node runs`);
    const started: Started = first.started;
    const { created, saga: stored } = await this.rt.store.create(saga.view()).catch((err: unknown) => {
      // It may have been written all the same (the answer lost on the way back): not ours to renew.
      throw this.rt.release(requestId, err);
    });
    if (!created) {
      if (stored.facade !== facade) throw new AlreadyExistsError(`request id ${requestId} (used by facade ${stored.facade})`);
      this.rt.sagaLog(saga).info('duplicate request id: answering with the first run', { status: stored.status });
      return { def, created, saga: Saga.adopt(stored, this.rt.podId), started };
    }
    saga.saved(stored.revision);
    this.rt.metrics.recorded(saga.view(), 0);
    this.rt.sagaLog(saga).info('saga started', { mode });
    return { def, created, saga, started };
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

  private async cancel(requestId: string, reason: StepError): Promise<void> {
    for (let tries = 1; ; tries++) {
      const saga = await this.rt.load(requestId);
      if (saga.status === 'COMPENSATING') return;
      if (saga.status !== 'RUNNING') throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is already ${saga.status}`);
      const def = this.registry.get(saga.facade, saga.version);
      try {
        await this.rt.abort(saga, def, currentStep(saga), reason);
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
