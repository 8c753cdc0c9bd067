import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AlreadyExistsError, ConcurrencyError, ensureError, errorCode, isErrorCode, NotFoundError, OrchestratorError, PoisonMessageError, SagaAbortedError, StepError,
} from './errors';
import type { FacadeDefinition, FacadeMode, StepDefinition } from './facade';
import type { Logger } from './logger';
import { decodeMessage, encodeMessage, type SagaMessage } from './messages';
import { Outcomes, type Wake } from './outcomes';
import { RecentSagas } from './recent';
import type { FacadeRegistry } from './registry';
import { backoffMs, DEFAULT_COMPENSATION, DEFAULT_RETRY, isRetryable, type RetryPolicy } from './retry';
import { Saga, type SagaSnapshot } from './saga';
import type { SagaFilter, SagaPage, SagaStore } from './store';
import { Throttle } from './throttle';
import type { Message, Transport } from './transport';

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
  throttle: { maxConcurrent: number; maxQueue: number };
  /** Fallback poll of the store while a caller waits for a saga another instance drives. */
  outcomePollMs: number;
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
  throttle: { maxConcurrent: 64, maxQueue: 1_000 },
  outcomePollMs: 500,
};

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

type Attempt = { ok: true; output: unknown } | { ok: false; error: Error };

/**
 * Runs facades: sync ones in-process, async and throttled ones step by step over the transport,
 * and the rollback consumer that compensates failed sagas. Every state change is written to the
 * store before the side effect it announces; leases and a recovery loop make sure that whatever
 * process dies, every saga ends COMPLETED or compensated. Knows nothing of Kafka, gRPC or SQL.
 */
export class Orchestrator {
  private readonly registry: FacadeRegistry;
  private readonly store: SagaStore;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly podId: string;
  /** The lease holder: this incarnation of the pod. Leases belong to it, not to the pod id. */
  readonly owner: string;
  private readonly outcomeTopic: string;
  readonly options: EngineOptions;
  private readonly throttle: Throttle;
  private readonly outcomes = new Outcomes();
  private readonly recent: RecentSagas;
  /** Sync and throttled sagas whose caller this instance holds: concurrent duplicates share one run. */
  private readonly calls = new Map<string, Promise<unknown>>();
  /**
   * Sagas this process gave up on (a store or broker failure left them half-handled): their leases
   * are no longer renewed, so that recovery (here or elsewhere) takes them over. By request id, when.
   */
  private readonly released = new Map<string, number>();
  /**
   * Step attempts this process ran whose outcome it could not store (the store failed after the
   * step acted): when their message is handled again, a new attempt is recorded, not the same one
   * run twice under one number. By `requestId:step:attempt`, when.
   */
  private readonly unrecorded = new Map<string, number>();
  /** Sagas whose compensation runs in this process now. */
  private readonly compensating = new Set<string>();
  private state: 'NEW' | 'RUNNING' | 'STOPPED' = 'NEW';
  private timer?: NodeJS.Timeout;
  private ticking = false;
  private lastHeartbeat = 0;

  constructor(deps: OrchestratorDeps) {
    this.registry = deps.registry;
    this.store = deps.store;
    this.transport = deps.transport;
    this.log = deps.logger;
    this.podId = deps.podId;
    this.owner = `${deps.podId}/${deps.incarnation ?? randomBytes(4).toString('hex')}`;
    this.outcomeTopic = deps.outcomeTopic;
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...deps.options };
    this.recent = new RecentSagas(10_000, this.silenceMs());
    this.throttle = new Throttle(this.options.throttle.maxConcurrent, this.options.throttle.maxQueue);
  }

  /** Subscribes to the facades' topics and the outcome broadcast, then starts the recovery loop. */
  async start(): Promise<void> {
    if (this.state !== 'NEW') throw new Error(`orchestrator cannot start from ${this.state}`);
    await this.transport.subscribe(this.registry.consumedTopics(), (m) => this.handle(m));
    await this.transport.subscribe([this.outcomeTopic], (m) => this.handle(m), { broadcast: true });
    this.state = 'RUNNING';
    this.timer = setInterval(() => void this.tick(), this.options.recoveryIntervalMs);
    this.timer.unref();
    await this.tick();
  }

  /** Refuses new sagas and stops the recovery loop; messages in hand are finished by the transport. */
  stop(): void {
    this.state = 'STOPPED';
    clearInterval(this.timer);
  }

  async getSaga(requestId: string): Promise<SagaSnapshot | undefined> {
    return this.store.get(requestId);
  }

  async listSagas(filter: SagaFilter): Promise<SagaPage> {
    return this.store.list(filter);
  }

  /** Runs a sync facade to the end. A repeated request id gets the first run's result. */
  runSync(facade: string, requestId: string, rawInput: unknown, call: CallOptions = {}): Promise<unknown> {
    return this.once(requestId, async () => {
      const begun = await this.begin(facade, 'sync', requestId, rawInput, call.deadline ?? this.callDeadline());
      if (!begun.created) return this.awaitOutcome(requestId, call.signal);
      return this.runInProcess(begun.saga, begun.def, call.signal);
    });
  }

  /** Starts an async facade: records the saga and publishes its first step. A repeated request id starts nothing. */
  async startAsync(facade: string, requestId: string, rawInput: unknown): Promise<string> {
    const begun = await this.begin(facade, 'async', requestId, rawInput, new Date(Date.now() + this.options.asyncDeadlineMs));
    if (begun.created) await this.publishStepOrRetryLater(begun.saga, begun.def, begun.def.steps[0], 'prerecorded');
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
        const wake = this.outcomes.next(requestId);
        try {
          await this.publishStepOrRetryLater(begun.saga, begun.def, begun.def.steps[0], 'prerecorded');
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
    return (await this.store.get(requestId))!;
  }

  /** RetryCompensation: resumes the compensation of a COMPENSATION_FAILED saga. */
  async retryCompensation(requestId: string): Promise<SagaSnapshot> {
    const saga = await this.load(requestId);
    if (saga.status !== 'COMPENSATION_FAILED') {
      throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is ${saga.status}, not COMPENSATION_FAILED`);
    }
    const def = this.registry.get(saga.facade);
    saga.retryCompensation();
    saga.own(this.owner);
    await this.save(saga);
    await this.publishRollbackOrRetryLater(saga, def);
    return saga.snapshot();
  }

  /** Entry point for every consumed message. Throws PoisonMessageError for messages that can never be handled. */
  async handle(message: Message): Promise<void> {
    const msg = decodeMessage(message);
    if (msg.kind === 'outcome') {
      this.outcomes.notify(msg.requestId);
      return;
    }
    const def = this.registry.find(msg.facade);
    if (!def) throw new PoisonMessageError(`unknown facade ${msg.facade}`);
    if (msg.kind === 'step') {
      const step = def.steps.find((s) => s.name === msg.node);
      if (!step) throw new PoisonMessageError(`facade ${def.name} has no node ${msg.node}`);
      if (step.topic !== message.topic) throw new PoisonMessageError(`node ${msg.node} is not bound to topic ${message.topic}`);
      await this.handleStep(def, step, msg.requestId, msg.attempt);
    } else {
      if (def.rollbackTopic !== message.topic) throw new PoisonMessageError(`facade ${def.name} does not roll back on topic ${message.topic}`);
      const unknown = [msg.failedNode, ...msg.completed.map((c) => c.node)].find((n) => !def.steps.some((s) => s.name === n));
      if (unknown) throw new PoisonMessageError(`facade ${def.name} has no node ${unknown}`);
      await this.handleRollback(def, msg.requestId);
    }
  }

  // ---- starting and finishing --------------------------------------------------------------

  /**
   * Records the new saga, with its first step as started in the same write (write ahead: sync
   * facades run it at once, the others publish it; see handleStep).
   */
  private async begin(facade: string, mode: FacadeMode, requestId: string, rawInput: unknown, deadline: Date) {
    if (this.state !== 'RUNNING') throw new OrchestratorError('UNAVAILABLE', 'orchestrator is not running (starting or shutting down)', true);
    const def = this.registry.get(facade);
    if (def.mode !== mode) throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} is ${def.mode}, not ${mode}`);
    const input = def.parseInput(rawInput);
    const saga = Saga.start({ requestId, facade, version: def.version, mode, input, steps: def.steps.map((s) => s.name), podId: this.podId, owner: this.owner, deadline });
    saga.stepStarted(def.steps[0].name);
    const { created, saga: stored } = await this.store.create(saga.view()).catch((err: unknown) => {
      // It may have been written all the same (the answer lost on the way back): not ours to renew.
      throw this.release(requestId, err);
    });
    if (!created) {
      if (stored.facade !== facade) throw new AlreadyExistsError(`request id ${requestId} (used by facade ${stored.facade})`);
      this.sagaLog(saga).info('duplicate request id: answering with the first run', { status: stored.status });
      return { def, created, saga: Saga.adopt(stored, this.podId) };
    }
    saga.saved(stored.revision);
    this.sagaLog(saga).info('saga started', { mode });
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
      const wake = started ?? this.outcomes.next(requestId);
      started = undefined;
      try {
        signal?.throwIfAborted();
        if (!known) {
          const saga = ended ?? (await this.load(requestId)).view();
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

  private async finish(saga: Saga, def: FacadeDefinition): Promise<unknown> {
    const output = def.result(saga.results());
    saga.complete(output);
    await this.save(saga);
    await this.announce(saga);
    this.sagaLog(saga).info('saga completed');
    return output;
  }

  /**
   * Marks the saga COMPENSATING and hands it to the facade's rollback consumer. If the rollback
   * cannot be published, a timer makes the recovery loop publish it later.
   */
  private async abort(saga: Saga, def: FacadeDefinition, failedNode: string, error: Error): Promise<SagaAbortedError> {
    saga.startCompensating(failedNode, error.message, errorCode(error));
    saga.wakeAt(undefined);
    await this.save(saga);
    await this.publishRollbackOrRetryLater(saga, def);
    await this.announce(saga);
    this.sagaLog(saga, failedNode).warn('saga aborted: rollback published', { error: error.message });
    return new SagaAbortedError(saga.requestId, failedNode, errorCode(error), error.message);
  }

  private async cancel(requestId: string, reason: StepError): Promise<void> {
    for (let tries = 1; ; tries++) {
      const saga = await this.load(requestId);
      if (saga.status === 'COMPENSATING') return;
      if (saga.status !== 'RUNNING') throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is already ${saga.status}`);
      const def = this.registry.get(saga.facade);
      try {
        await this.abort(saga, def, currentStep(saga, def).name, reason);
        return;
      } catch (err) {
        if (!(err instanceof ConcurrencyError) || tries >= 5) throw err;
      }
    }
  }

  // ---- running steps -------------------------------------------------------------------------

  /** Sync facades: every step in this process, retries included (the caller is waiting anyway). */
  private async runInProcess(saga: Saga, def: FacadeDefinition, signal?: AbortSignal): Promise<unknown> {
    try {
      for (const step of def.steps) {
        for (;;) {
          // Write ahead: on record as started before it can act (the first step was, by begin()).
          const prestarted = saga.step(step.name).status === 'RUNNING';
          const attempt = prestarted ? saga.step(step.name).attempts : saga.stepStarted(step.name);
          if (!prestarted) await this.save(saga);
          const result = await this.attempt(saga, def, step, signal);
          if (result.ok) {
            saga.stepSucceeded(step.name, result.output);
            break;
          }
          const wait = this.retryDelay(saga, step, attempt, result.error, signal);
          if (wait === undefined) {
            saga.stepFailed(step.name, result.error.message);
            throw await this.abort(saga, def, step.name, result.error);
          }
          saga.stepRetrying(step.name, result.error.message, new Date(Date.now() + wait));
          await this.save(saga);
          await sleep(wait, undefined, { signal }).catch(() => undefined);
        }
      }
      return await this.finish(saga, def);
    } catch (err) {
      // Someone else moved the saga on (CancelSaga, or recovery after we lost our lease).
      if (err instanceof ConcurrencyError) return outcomeOf((await this.load(saga.requestId)).snapshot());
      // Handed to the rollback consumer: nothing left for this process to do.
      if (err instanceof SagaAbortedError) throw err;
      // Anything else (the store failed mid-way): recovery compensates it once its lease lapses.
      throw this.release(saga.requestId, err);
    }
  }

  /**
   * Async and throttled facades: one step, on whichever instance consumed its message. Whoever
   * publishes a step's first message records the attempt as started in the write before it (write
   * ahead), so the consumer of that attempt runs it without a write of its own. A message for an
   * attempt not on record (recovery republishing a step) records a new attempt first.
   */
  private async handleStep(def: FacadeDefinition, step: StepDefinition, requestId: string, messageAttempt: number): Promise<void> {
    const index = def.steps.indexOf(step);
    const applies = (s: Saga) => s.status === 'RUNNING' && def.steps.slice(0, index).every((p) => s.step(p.name).status === 'SUCCEEDED');
    const saga = await this.findRecent(requestId, applies);
    const log = this.sagaLog(saga, step.name);
    if (!applies(saga)) {
      log.debug('step message not applicable: skipped', { sagaStatus: saga.status });
      return;
    }
    if (saga.step(step.name).status === 'SUCCEEDED') {
      // A redelivery: advance() finds the next step on record (its message left with it, or recovery
      // will republish it) and does nothing, or, for a saga recorded before that, publishes it.
      await this.advance(saga, def, index);
      return;
    }
    if (saga.pastDeadline) {
      await this.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'saga deadline passed', false));
      return;
    }
    const st = saga.step(step.name);
    if (messageAttempt < st.attempts || (st.status === 'RETRYING' && messageAttempt === st.attempts)) {
      // A redelivery of an attempt that a later one replaced (its message is on its way) or that failed (its retry has a timer).
      log.debug('step message of a past attempt: skipped', { messageAttempt, attempts: st.attempts });
      return;
    }
    const mine = saga.owner === this.owner;
    // The owner is gone: an earlier run of this pod, or a process that no longer renews its lease.
    // Its own consumer may have run the attempt on record without a write.
    const ownerGone = !mine && (podOf(saga.owner) === this.podId || (saga.leaseAgeMs ?? 0) > this.silenceMs());
    if (ownerGone && saga.mode === 'throttled') {
      log.info('step message of a throttled saga whose caller died with its instance: recovery compensates it', { owner: saga.owner });
      return;
    }
    // The attempt on record is run by whoever consumes its message, without a write of its own,
    // unless it may have run already (its owner is gone, another process took it, or this one ran
    // it and could not store the outcome): then a new attempt is recorded first, so that the
    // record shows every run.
    const ranHere = this.unrecorded.delete(`${requestId}:${step.name}:${st.attempts}`);
    const mayHaveRun = ownerGone || st.runner !== undefined || ranHere;
    const onRecord = st.status === 'RUNNING' && st.attempts === messageAttempt && !mayHaveRun;
    const attempt = onRecord ? st.attempts : saga.stepStarted(step.name);
    // Another process's saga: the lease of an async one follows its work; a throttled one stays
    // with the instance holding its caller. Either way, who runs the attempt is on record first.
    const takeOver = !mine;
    if (takeOver) {
      if (saga.mode === 'async') saga.own(this.owner);
      saga.stepTaken(step.name, this.owner);
    }
    if (!onRecord || takeOver) {
      saga.wakeAt(undefined);
      await this.save(saga);
    }
    const result = await this.attempt(saga, def, step);
    try {
      await this.recordOutcome(saga, def, step, index, attempt, result);
    } catch (err) {
      if (this.unrecorded.size < 100_000) this.unrecorded.set(`${requestId}:${step.name}:${attempt}`, Date.now());
      throw err;
    }
  }

  private async recordOutcome(saga: Saga, def: FacadeDefinition, step: StepDefinition, index: number, attempt: number, result: Attempt): Promise<void> {
    if (result.ok) {
      saga.stepSucceeded(step.name, result.output);
      await this.advance(saga, def, index);
      return;
    }
    const wait = this.retryDelay(saga, step, attempt, result.error);
    if (wait === undefined) {
      saga.stepFailed(step.name, result.error.message);
      await this.abort(saga, def, step.name, result.error);
      return;
    }
    // A durable timer, not a sleep: whichever instance holds the lease publishes the next attempt when due.
    const at = new Date(Date.now() + wait);
    saga.stepRetrying(step.name, result.error.message, at);
    saga.wakeAt(at);
    await this.save(saga);
  }

  /**
   * After step `index` succeeded: complete the saga, or record the next step as started with this
   * step's outcome (one write) and publish it. A redelivered message finds the next step already
   * on record and publishes nothing: whoever recorded it published it, or left a timer for recovery.
   */
  private async advance(saga: Saga, def: FacadeDefinition, index: number): Promise<void> {
    const next = def.steps[index + 1];
    if (!next) {
      await this.finish(saga, def);
      return;
    }
    if (saga.step(next.name).status !== 'PENDING') return;
    saga.stepStarted(next.name);
    await this.save(saga);
    await this.publishStepOrRetryLater(saga, def, next, 'prerecorded');
  }

  /** One attempt of a step, bounded by its timeout, the saga deadline and the caller. */
  private async attempt(saga: Saga, def: FacadeDefinition, step: StepDefinition, callerSignal?: AbortSignal): Promise<Attempt> {
    const timeoutMs = step.timeoutMs ?? this.options.stepTimeoutMs;
    const deadline = saga.deadline;
    const untilDeadline = deadline ? Math.max(0, deadline.getTime() - Date.now()) : Infinity;
    // One controller and one timer for whichever comes first: the step's timeout, the saga's deadline or the caller.
    let cut: 'timeout' | 'deadline' | 'caller' | undefined;
    const controller = new AbortController();
    const abort = (why: typeof cut, reason?: unknown) => {
      cut ??= why;
      controller.abort(reason);
    };
    const timer = setTimeout(() => abort(untilDeadline < timeoutMs ? 'deadline' : 'timeout'), Math.min(timeoutMs, untilDeadline));
    const onCaller = () => abort('caller', callerSignal!.reason);
    if (callerSignal?.aborted) onCaller();
    else callerSignal?.addEventListener('abort', onCaller, { once: true });
    const { signal } = controller;
    const st = saga.step(step.name);
    const log = this.sagaLog(saga, step.name);
    try {
      const output = await untilAborted(step.run({
        requestId: saga.requestId, facade: def.name, step: step.name, attempt: st.attempts,
        idempotencyKey: `${saga.requestId}:${step.name}`, input: saga.input, results: saga.results(), signal, deadline, log,
      }), signal);
      log.info('step succeeded', { attempt: st.attempts });
      return { ok: true, output: output ?? null };
    } catch (err) {
      let error = ensureError(err);
      if (cut === 'deadline') error = new StepError('DEADLINE_EXCEEDED', `saga deadline passed during ${step.name}`, false);
      else if (cut === 'caller') error = new StepError('CANCELLED', 'the caller went away', false);
      else if (cut === 'timeout') error = new StepError('DEADLINE_EXCEEDED', `${step.name} timed out after ${timeoutMs} ms`, true);
      log.warn('step attempt failed', { attempt: st.attempts, error: error.message, code: errorCode(error), retryable: isRetryable(error) });
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCaller);
    }
  }

  /** Milliseconds before the next attempt, or undefined when the step must not be retried. */
  private retryDelay(saga: Saga, step: StepDefinition, attempt: number, error: Error, signal?: AbortSignal): number | undefined {
    const policy = { ...this.options.retry, ...step.retry };
    if (!isRetryable(error) || attempt >= policy.maxAttempts || signal?.aborted) return undefined;
    const wait = backoffMs(policy, attempt);
    const deadline = saga.deadline;
    if (deadline && Date.now() + wait >= deadline.getTime()) return undefined;
    return wait;
  }

  // ---- compensation --------------------------------------------------------------------------

  /**
   * The rollback consumer: compensates every step that may have acted, in reverse order, one attempt
   * at a time. A failed attempt is retried by a durable timer, not a sleep: the message is done, and
   * recovery publishes the rollback again when the timer is due. A message is held at most about one
   * attempt past stepTimeoutMs, so that the consumer stays in its group whatever the upstreams do.
   */
  private async handleRollback(def: FacadeDefinition, requestId: string): Promise<void> {
    const saga = await this.findRecent(requestId, (s) => s.status === 'COMPENSATING');
    const log = this.sagaLog(saga);
    if (saga.status !== 'COMPENSATING') {
      log.debug('rollback message for a saga not compensating: skipped', { sagaStatus: saga.status });
      return;
    }
    const inFlight = saga.compensationInFlight();
    if (this.compensating.has(requestId) || (inFlight && saga.owner !== this.owner)) {
      // Another consumer (here, or an instance holding the lease) is running an attempt: it goes on
      // from there, or, if it dies, recovery takes the saga over once its lease lapses.
      log.info('rollback message for a saga being compensated elsewhere: skipped', { node: inFlight, owner: saga.owner });
      return;
    }
    if (saga.wakeAtMs !== undefined && saga.wakeAtMs > Date.now()) {
      log.debug('rollback message ahead of the next compensation attempt: skipped', { wakeAt: saga.view().wakeAt });
      return;
    }
    this.compensating.add(requestId);
    try {
      await this.compensate(saga, def);
    } finally {
      this.compensating.delete(requestId);
    }
  }

  private async compensate(saga: Saga, def: FacadeDefinition): Promise<void> {
    saga.own(this.owner);
    saga.wakeAt(undefined);
    const log = this.sagaLog(saga);
    const began = Date.now();
    const started = def.steps.filter((s) => saga.step(s.name).attempts > 0).reverse();
    for (const step of started) {
      if (!step.compensate || saga.step(step.name).status === 'COMPENSATED') continue;
      if (Date.now() - began >= this.options.stepTimeoutMs) {
        // Held long enough: the rest goes on from a timer, through the rollback topic again.
        saga.wakeAt(new Date());
        await this.save(saga);
        return;
      }
      const outcome = await this.compensateOnce(saga, def, step);
      if (outcome === 'compensated') continue;
      if (outcome instanceof Date) {
        saga.wakeAt(outcome);
        await this.save(saga);
        return;
      }
      saga.compensationFailed(`compensation of ${step.name} failed after ${saga.step(step.name).compensationAttempts} attempts: ${outcome.message}`);
      await this.save(saga);
      await this.announce(saga);
      log.error('saga COMPENSATION_FAILED: RetryCompensation resumes it', { node: step.name, error: outcome.message });
      return;
    }
    saga.compensated();
    await this.save(saga);
    await this.announce(saga);
    log.info('saga compensated');
  }

  /** One attempt, written ahead: 'compensated', when the next attempt is due, or the last error once attempts are exhausted. */
  private async compensateOnce(saga: Saga, def: FacadeDefinition, step: StepDefinition): Promise<'compensated' | Date | Error> {
    const policy = this.options.compensation;
    const log = this.sagaLog(saga, step.name);
    const attempt = saga.compensationStarted(step.name);
    await this.save(saga);
    const signal = AbortSignal.timeout(step.timeoutMs ?? this.options.stepTimeoutMs);
    try {
      await untilAborted(step.compensate!({
        requestId: saga.requestId, facade: def.name, step: step.name, attempt,
        idempotencyKey: `${saga.requestId}:${step.name}:compensate`, input: saga.input, results: saga.results(),
        signal, log, output: saga.step(step.name).output,
      }), signal);
      saga.compensationSucceeded(step.name);
      await this.save(saga);
      log.info('step compensated', { attempt });
      return 'compensated';
    } catch (err) {
      const error = ensureError(err);
      const final = attempt >= policy.maxAttempts;
      saga.compensationAttemptFailed(step.name, error.message, final);
      log.warn('compensation attempt failed', { attempt, final, error: error.message });
      if (final) return error;
      return new Date(Date.now() + backoffMs(policy, attempt));
    }
  }

  // ---- leases and recovery -------------------------------------------------------------------

  /** Renews this instance's leases, and takes over sagas whose lease expired or whose timer is due. */
  private async tick(): Promise<void> {
    if (this.ticking || this.state !== 'RUNNING') return;
    this.ticking = true;
    try {
      if (Date.now() - this.lastHeartbeat >= this.options.heartbeatMs) {
        await this.store.renewLeases(this.owner, this.releasedIds());
        this.lastHeartbeat = Date.now();
      }
      const claimed = await this.store.claim(this.owner, this.options.recoveryBatch);
      for (const snapshot of claimed) {
        this.released.delete(snapshot.requestId);
        await this.recover(Saga.adopt(snapshot, this.podId)).catch((err: unknown) => this.release(snapshot.requestId, err));
      }
    } catch (err) {
      this.log.warn('recovery loop: store unavailable, will retry', { error: ensureError(err).message });
    } finally {
      this.ticking = false;
    }
  }

  private async recover(saga: Saga): Promise<void> {
    const def = this.registry.find(saga.facade);
    const log = this.sagaLog(saga);
    if (!def) {
      log.error('claimed a saga of an unknown facade: left as is');
      return;
    }
    if (saga.status === 'COMPENSATING') {
      const interrupted = saga.compensationInFlight();
      if (interrupted) {
        // Its lease lapsed mid-attempt: the instance running it is gone; the attempt counts as failed.
        saga.compensationAttemptFailed(interrupted, 'interrupted: the instance running it went away', false);
        await this.save(saga);
      }
      log.info('recovery: republishing the rollback');
      await this.publishRollbackOrRetryLater(saga, def);
      return;
    }
    const step = currentStep(saga, def);
    const callerHere = this.calls.has(saga.requestId);
    // A sync saga's run retries in place, in its caller's call; a throttled one's retries come from timers, as async ones.
    if (saga.mode === 'sync' && callerHere) return;
    if (saga.mode !== 'async' && !callerHere) {
      log.warn('recovery: the caller of this saga is gone: compensating', { node: step.name });
      await this.abort(saga, def, step.name, new StepError('CANCELLED', 'the instance holding the caller went away', false));
      return;
    }
    if (saga.pastDeadline) {
      await this.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'saga deadline passed', false));
      return;
    }
    log.info('recovery: resuming at its current step', { node: step.name });
    // A new attempt, on record before its message leaves: the one its lost owner had may have run.
    saga.stepStarted(step.name);
    await this.save(saga);
    await this.publishStepOrRetryLater(saga, def, step, 'prerecorded');
  }

  // ---- plumbing ------------------------------------------------------------------------------

  /** `prerecorded`: the attempt the message asks for is the one on record, else the next one. */
  private async publishStepOrRetryLater(saga: Saga, def: FacadeDefinition, step: StepDefinition, attempt: 'prerecorded' | 'next' = 'next'): Promise<void> {
    const { attempts } = saga.step(step.name);
    await this.publishOrRetryLater(saga, encodeMessage(step.topic!, {
      kind: 'step', requestId: saga.requestId, facade: def.name, version: def.version, node: step.name,
      attempt: attempt === 'prerecorded' ? attempts : attempts + 1, input: saga.input, results: saga.results(),
    }));
  }

  private async publishRollbackOrRetryLater(saga: Saga, def: FacadeDefinition): Promise<void> {
    const snapshot = saga.view();
    const failed = snapshot.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
    await this.publishOrRetryLater(saga, encodeMessage(def.rollbackTopic, {
      kind: 'rollback', requestId: saga.requestId, facade: def.name, version: def.version,
      failedNode: failed?.step ?? def.steps[0].name, error: { code: 'SAGA_ABORTED', message: snapshot.error ?? '' },
      completed: Object.entries(saga.results()).map(([node, output]) => ({ node, output })), input: saga.input,
    }));
  }

  /** A message that cannot be published now is not lost: the saga gets a timer, and recovery publishes it. */
  private async publishOrRetryLater(saga: Saga, message: Message): Promise<void> {
    // Before publishing: the consumer may get the message before publish() returns.
    this.recent.put(saga.snapshot());
    try {
      await this.transport.publish(message);
    } catch (err) {
      this.recent.delete(saga.requestId);
      this.sagaLog(saga).warn('publish failed: recovery will publish it again', { topic: message.topic, error: ensureError(err).message });
      saga.wakeAt(new Date(Date.now() + this.options.recoveryIntervalMs));
      // Without the timer on record, only an expired lease gets the message published.
      await this.save(saga).catch((saveErr: unknown) => { throw this.release(saga.requestId, saveErr); });
    }
  }

  /**
   * Gives a saga up after a failure left it half-handled: its lease is no longer renewed, so that
   * recovery, here or on another instance, takes it over once the lease lapses. Returns the error.
   */
  private release(requestId: string, err: unknown): Error {
    const error = ensureError(err);
    this.released.set(requestId, Date.now());
    this.log.warn('saga given up after a failure: recovery takes it over once its lease lapses', { requestId, error: error.message });
    return error;
  }

  /**
   * A lease older than this was not renewed by two heartbeats in a row: its owner is gone. Well under
   * Kafka's session timeout (10 s), after which a dead consumer's messages are delivered elsewhere.
   */
  private silenceMs(): number {
    return 2 * this.options.heartbeatMs + 1_000;
  }

  /** The sagas released within the last two lease TTLs: by then their leases have lapsed and been claimed. */
  private releasedIds(): string[] {
    const before = Date.now() - 2 * this.options.leaseTtlMs;
    for (const [id, at] of this.released) if (at < before) this.released.delete(id);
    // A message held through a long store outage is handled again within the hour, or by another instance.
    for (const [key, at] of this.unrecorded) if (at < Date.now() - 3_600_000) this.unrecorded.delete(key);
    return [...this.released.keys()];
  }

  /** Wakes the instance holding a throttled call, wherever the saga moved on. */
  private async announce(saga: Saga): Promise<void> {
    if (saga.mode !== 'throttled') return;
    // The live state, not a copy: the saga has ended here, nothing changes it after this, and waiters only read it.
    if (this.outcomes.waiting(saga.requestId)) this.outcomes.notify(saga.requestId, saga.view());
    // The caller is held here, and was just woken: no other instance needs telling (a duplicate
    // call waiting elsewhere also polls the store).
    if (this.calls.has(saga.requestId)) return;
    const msg: SagaMessage = { kind: 'outcome', requestId: saga.requestId, facade: saga.facade, version: 1, status: saga.status, input: null };
    await this.transport.publish(encodeMessage(this.outcomeTopic, msg)).catch((err) =>
      this.sagaLog(saga).warn('outcome broadcast failed; the caller will poll', { error: ensureError(err).message }));
  }

  private async once(requestId: string, run: () => Promise<unknown>): Promise<unknown> {
    const running = this.calls.get(requestId);
    if (running) return running;
    const promise = run().finally(() => this.calls.delete(requestId));
    this.calls.set(requestId, promise);
    return promise;
  }

  private callDeadline(): Date {
    return new Date(Date.now() + this.options.callDeadlineMs);
  }

  private async load(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw new NotFoundError(`saga ${requestId}`);
    return Saga.adopt(snapshot, this.podId);
  }

  /**
   * For messages: the copy this instance kept when it published, else the store's. A copy may be
   * behind the store; a write from it is fenced, but a decision to do nothing is not: unless the
   * copy passes `usable`, the store is asked.
   */
  private async findRecent(requestId: string, usable: (saga: Saga) => boolean): Promise<Saga> {
    const recent = this.recent.take(requestId);
    if (recent) {
      const saga = Saga.adopt(recent, this.podId);
      if (usable(saga)) return saga;
    }
    return this.find(requestId);
  }

  /** Like load(), for messages: a message about a saga the store does not know can never be handled. */
  private async find(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw new PoisonMessageError(`unknown saga ${requestId}`);
    return Saga.adopt(snapshot, this.podId);
  }

  private async save(saga: Saga): Promise<void> {
    saga.saved(await this.store.save(saga.view(), saga.changes()));
    // Ours again (e.g. a redelivered message took it up): its lease is renewed again.
    if (this.released.size > 0) this.released.delete(saga.requestId);
  }

  private sagaLog(saga: Saga, node?: string): Logger {
    return this.log.child(node ? { requestId: saga.requestId, facade: saga.facade, node } : { requestId: saga.requestId, facade: saga.facade });
  }
}

/** The first step that has not succeeded (the last one if all have). */
function currentStep(saga: Saga, def: FacadeDefinition): StepDefinition {
  return def.steps.find((s) => saga.step(s.name).status !== 'SUCCEEDED') ?? def.steps[def.steps.length - 1];
}

/** The pod id of an owner (`<podId>/<start id>`). */
function podOf(owner: string | undefined): string | undefined {
  return owner?.slice(0, owner.lastIndexOf('/'));
}

/** Why a caller's signal fired, as the error its saga is aborted with. */
function callerGone(signal: AbortSignal): StepError {
  const reason = signal.reason as { name?: unknown } | undefined;
  const code = reason?.name === 'TimeoutError' ? 'DEADLINE_EXCEEDED' : errorCode(reason); // AbortSignal.timeout()'s reason
  if (code === 'DEADLINE_EXCEEDED') return new StepError(code, 'the caller deadline passed', false);
  return new StepError('CANCELLED', 'the caller cancelled the call', false);
}

/** How a finished (or aborted) saga answers its caller. */
function outcomeOf(saga: Readonly<SagaSnapshot>): unknown {
  if (saga.status === 'COMPLETED') return saga.output;
  const aborted = saga.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
  const failedStep = aborted?.step ?? '';
  const cause = aborted?.detail ?? saga.error ?? '';
  throw new SagaAbortedError(saga.requestId, failedStep, isErrorCode(saga.errorCode) ? saga.errorCode : 'INTERNAL', cause);
}

/** Stops waiting for a step that ignores its AbortSignal. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
