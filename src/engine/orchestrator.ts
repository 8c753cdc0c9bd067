import { setTimeout as sleep } from 'node:timers/promises';
import {
  AlreadyExistsError, ConcurrencyError, ensureError, errorCode, NotFoundError, OrchestratorError, PoisonMessageError, SagaAbortedError, StepError,
} from './errors';
import type { FacadeDefinition, FacadeMode, StepDefinition } from './facade';
import type { Logger } from './logger';
import { decodeMessage, encodeMessage, type SagaMessage } from './messages';
import { Outcomes, type Wake } from './outcomes';
import { RecentSagas } from './recent';
import type { FacadeRegistry } from './registry';
import { backoffMs, DEFAULT_RETRY, isRetryable, type RetryPolicy } from './retry';
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
  compensation: { maxAttempts: 5, initialBackoffMs: 200, maxBackoffMs: 5_000, multiplier: 2, jitter: 0.2 },
  asyncDeadlineMs: 300_000,
  callDeadlineMs: 60_000,
  heartbeatMs: 3_000,
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
  private readonly outcomeTopic: string;
  readonly options: EngineOptions;
  private readonly throttle: Throttle;
  private readonly outcomes = new Outcomes();
  private readonly recent = new RecentSagas(10_000);
  /** Sync and throttled sagas whose caller this instance holds: concurrent duplicates share one run. */
  private readonly calls = new Map<string, Promise<unknown>>();
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
    this.outcomeTopic = deps.outcomeTopic;
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...deps.options };
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
      try {
        const begun = await this.begin(facade, 'throttled', requestId, rawInput, call.deadline ?? this.callDeadline());
        if (!begun.created) return await this.awaitOutcome(requestId, call.signal);
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
        if (call.signal?.aborted) {
          await this.cancel(requestId, 'the caller deadline passed').catch(() => undefined);
          throw new OrchestratorError('DEADLINE_EXCEEDED', `saga ${requestId}: deadline exceeded; it is being compensated`);
        }
        throw err;
      } finally {
        release();
      }
    });
  }

  /** CancelSaga: a running saga is compensated; a finished one is refused with FAILED_PRECONDITION. */
  async cancelSaga(requestId: string): Promise<SagaSnapshot> {
    await this.cancel(requestId, 'cancelled on request');
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
    saga.own(this.podId);
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
    const saga = Saga.start({ requestId, facade, version: def.version, mode, input, steps: def.steps.map((s) => s.name), podId: this.podId, deadline });
    saga.stepStarted(def.steps[0].name);
    const { created, saga: stored } = await this.store.create(saga.view());
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
    saga.startCompensating(failedNode, error.message);
    saga.wakeAt(undefined);
    await this.save(saga);
    await this.publishRollbackOrRetryLater(saga, def);
    await this.announce(saga);
    this.sagaLog(saga, failedNode).warn('saga aborted: rollback published', { error: error.message });
    return new SagaAbortedError(saga.requestId, failedNode, errorCode(error), error.message);
  }

  private async cancel(requestId: string, reason: string): Promise<void> {
    for (let tries = 1; ; tries++) {
      const saga = await this.load(requestId);
      if (saga.status === 'COMPENSATING') return;
      if (saga.status !== 'RUNNING') throw new OrchestratorError('FAILED_PRECONDITION', `saga ${requestId} is already ${saga.status}`);
      const def = this.registry.get(saga.facade);
      try {
        await this.abort(saga, def, currentStep(saga, def).name, new StepError('CANCELLED', reason, false));
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
      throw err;
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
    const onRecord = st.status === 'RUNNING' && st.attempts === messageAttempt;
    const attempt = onRecord ? st.attempts : saga.stepStarted(step.name);
    // The lease follows an async saga's work, taken by a write before the step runs; a throttled
    // saga stays with the instance holding its caller.
    const takeOver = saga.mode === 'async' && saga.owner !== this.podId;
    if (takeOver) saga.own(this.podId);
    if (!onRecord || takeOver) {
      saga.wakeAt(undefined);
      await this.save(saga);
    }
    const result = await this.attempt(saga, def, step);
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

  /** The rollback consumer: compensates every step that may have acted, in reverse order. */
  private async handleRollback(def: FacadeDefinition, requestId: string): Promise<void> {
    const saga = await this.findRecent(requestId, (s) => s.status === 'COMPENSATING');
    if (saga.status !== 'COMPENSATING') {
      this.sagaLog(saga).debug('rollback message for a saga not compensating: skipped', { sagaStatus: saga.status });
      return;
    }
    saga.own(this.podId);
    saga.wakeAt(undefined);
    const log = this.sagaLog(saga);
    const started = def.steps.filter((s) => saga.step(s.name).attempts > 0).reverse();
    for (const step of started) {
      if (!step.compensate || saga.step(step.name).status === 'COMPENSATED') continue;
      const error = await this.compensateStep(saga, def, step);
      if (error) {
        saga.compensationFailed(`compensation of ${step.name} failed after ${saga.step(step.name).compensationAttempts} attempts: ${error.message}`);
        await this.save(saga);
        await this.announce(saga);
        log.error('saga COMPENSATION_FAILED: RetryCompensation resumes it', { node: step.name, error: error.message });
        return;
      }
    }
    saga.compensated();
    await this.save(saga);
    await this.announce(saga);
    log.info('saga compensated');
  }

  /** Returns undefined once compensated, or the last error once attempts are exhausted. */
  private async compensateStep(saga: Saga, def: FacadeDefinition, step: StepDefinition): Promise<Error | undefined> {
    const policy = this.options.compensation;
    const log = this.sagaLog(saga, step.name);
    for (;;) {
      const attempt = saga.compensationStarted(step.name);
      await this.save(saga);
      const signal = AbortSignal.timeout(step.timeoutMs ?? this.options.stepTimeoutMs);
      try {
        await untilAborted(step.compensate!({
          requestId: saga.requestId, facade: def.name, step: step.name, attempt,
          idempotencyKey: `${saga.requestId}:${step.name}:compensate`, input: saga.input, results: saga.results(),
          signal, log, output: saga.step(step.name).output as never,
        }), signal);
        saga.compensationSucceeded(step.name);
        await this.save(saga);
        log.info('step compensated', { attempt });
        return undefined;
      } catch (err) {
        const error = ensureError(err);
        const final = attempt >= policy.maxAttempts;
        saga.compensationAttemptFailed(step.name, error.message, final);
        await this.save(saga);
        log.warn('compensation attempt failed', { attempt, final, error: error.message });
        if (final) return error;
        await sleep(backoffMs(policy, attempt));
      }
    }
  }

  // ---- leases and recovery -------------------------------------------------------------------

  /** Renews this instance's leases, and takes over sagas whose lease expired or whose timer is due. */
  private async tick(): Promise<void> {
    if (this.ticking || this.state !== 'RUNNING') return;
    this.ticking = true;
    try {
      if (Date.now() - this.lastHeartbeat >= this.options.heartbeatMs) {
        await this.store.renewLeases(this.podId);
        this.lastHeartbeat = Date.now();
      }
      const claimed = await this.store.claim(this.podId, this.options.recoveryBatch);
      for (const snapshot of claimed) {
        await this.recover(Saga.adopt(snapshot, this.podId)).catch((err) =>
          this.log.error('recovery of a saga failed; it will be claimed again', { requestId: snapshot.requestId, error: ensureError(err).message }));
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
      log.info('recovery: republishing the rollback');
      await this.publishRollbackOrRetryLater(saga, def);
      return;
    }
    const step = currentStep(saga, def);
    if (saga.mode !== 'async') {
      if (this.calls.has(saga.requestId)) return; // our own caller is still here and waiting
      log.warn('recovery: the caller of this saga is gone: compensating', { node: step.name });
      await this.abort(saga, def, step.name, new StepError('CANCELLED', 'the instance holding the caller went away', false));
      return;
    }
    if (saga.pastDeadline) {
      await this.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'saga deadline passed', false));
      return;
    }
    log.info('recovery: resuming at its current step', { node: step.name });
    await this.publishStepOrRetryLater(saga, def, step);
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
      await this.save(saga);
    }
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
  }

  private sagaLog(saga: Saga, node?: string): Logger {
    return this.log.child(node ? { requestId: saga.requestId, facade: saga.facade, node } : { requestId: saga.requestId, facade: saga.facade });
  }
}

/** The first step that has not succeeded (the last one if all have). */
function currentStep(saga: Saga, def: FacadeDefinition): StepDefinition {
  return def.steps.find((s) => saga.step(s.name).status !== 'SUCCEEDED') ?? def.steps[def.steps.length - 1];
}

/** How a finished (or aborted) saga answers its caller. */
function outcomeOf(saga: Readonly<SagaSnapshot>): unknown {
  if (saga.status === 'COMPLETED') return saga.output;
  const aborted = saga.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
  const failedStep = aborted?.step ?? '';
  const failed = saga.steps.find((s) => s.name === failedStep);
  const cause = aborted?.detail ?? saga.error ?? '';
  const code = /timed out|deadline/.test(cause) ? 'DEADLINE_EXCEEDED' : /UNAVAILABLE/.test(failed?.error ?? '') ? 'UNAVAILABLE' : 'FAILED_PRECONDITION';
  throw new SagaAbortedError(saga.requestId, failedStep, code, cause);
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
