import { setTimeout as sleep } from 'node:timers/promises';
import { ConcurrencyError, ensureError, errorCode, SagaAbortedError, StepError } from './errors';
import type { FacadeDefinition, StepDefinition } from './facade';
import { outcomeOf } from './outcome-of';
import { backoffMs, isRetryable } from './retry';
import { podOf, type SagaRuntime } from './runtime';
import type { Saga } from './saga';

type Attempt = { ok: true; output: unknown } | { ok: false; error: Error };

/**
 * Runs steps: a sync saga's in its caller's call, retries in place; an async or throttled saga's
 * one message at a time, retries from durable timers. Each attempt is on record before it can act.
 */
export class StepRunner {
  constructor(private readonly rt: SagaRuntime) {}

  /** Sync facades: every step in this process, retries included (the caller is waiting anyway). */
  async runInProcess(saga: Saga, def: FacadeDefinition, signal?: AbortSignal): Promise<unknown> {
    try {
      for (const step of def.steps) {
        for (;;) {
          // Write ahead: on record as started before it can act (the first step was, by begin()).
          const prestarted = saga.step(step.name).status === 'RUNNING';
          const attempt = prestarted ? saga.step(step.name).attempts : saga.stepStarted(step.name);
          if (!prestarted) await this.rt.save(saga);
          const result = await this.attempt(saga, def, step, signal);
          if (result.ok) {
            saga.stepSucceeded(step.name, result.output);
            break;
          }
          const wait = this.retryDelay(saga, step, attempt, result.error, signal);
          if (wait === undefined) {
            saga.stepFailed(step.name, result.error.message);
            throw await this.rt.abort(saga, def, step.name, result.error);
          }
          saga.stepRetrying(step.name, result.error.message, new Date(Date.now() + wait));
          await this.rt.save(saga);
          await sleep(wait, undefined, { signal }).catch(() => undefined);
        }
      }
      return await this.rt.finish(saga, def);
    } catch (err) {
      // Someone else moved the saga on (CancelSaga, or recovery after we lost our lease).
      if (err instanceof ConcurrencyError) return outcomeOf((await this.rt.load(saga.requestId)).snapshot());
      // Handed to the rollback consumer: nothing left for this process to do.
      if (err instanceof SagaAbortedError) throw err;
      // Anything else (the store failed mid-way): recovery compensates it once its lease lapses.
      throw this.rt.release(saga.requestId, err);
    }
  }

  /**
   * Async and throttled facades: one step, on whichever instance consumed its message. Whoever
   * publishes a step's first message records the attempt as started in the write before it (write
   * ahead), so the consumer of that attempt runs it without a write of its own. A message for an
   * attempt not on record (sent before recovery recorded its own attempts) records a new attempt first.
   */
  async handleStep(def: FacadeDefinition, step: StepDefinition, requestId: string, messageAttempt: number): Promise<void> {
    const index = def.steps.indexOf(step);
    const applies = (s: Saga) => s.status === 'RUNNING' && def.steps.slice(0, index).every((p) => s.step(p.name).status === 'SUCCEEDED');
    const saga = await this.rt.findRecent(requestId, applies);
    const log = this.rt.sagaLog(saga, step.name);
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
      await this.rt.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'saga deadline passed', false));
      return;
    }
    const st = saga.step(step.name);
    if (messageAttempt < st.attempts || (st.status === 'RETRYING' && messageAttempt === st.attempts)) {
      // A redelivery of an attempt that a later one replaced (its message is on its way) or that failed (its retry has a timer).
      log.debug('step message of a past attempt: skipped', { messageAttempt, attempts: st.attempts });
      return;
    }
    const mine = saga.owner === this.rt.owner;
    // The owner is gone: an earlier run of this pod, or a process that no longer renews its lease.
    // Its own consumer may have run the attempt on record without a write.
    const ownerGone = !mine && (podOf(saga.owner) === this.rt.podId || (saga.leaseAgeMs ?? 0) > this.rt.silenceMs());
    if (ownerGone && saga.mode === 'throttled') {
      log.info('step message of a throttled saga whose caller died with its instance: recovery compensates it', { owner: saga.owner });
      return;
    }
    // The attempt on record is run by whoever consumes its message, without a write of its own,
    // unless it may have run already (its owner is gone, another process took it, or this one ran
    // it and could not store the outcome): then a new attempt is recorded first, so that the
    // record shows every run.
    const ranHere = this.rt.unrecorded.delete(`${requestId}:${step.name}:${st.attempts}`);
    const mayHaveRun = ownerGone || st.runner !== undefined || ranHere;
    const onRecord = st.status === 'RUNNING' && st.attempts === messageAttempt && !mayHaveRun;
    const attempt = onRecord ? st.attempts : saga.stepStarted(step.name);
    // Another process's saga: the lease of an async one follows its work; a throttled one stays
    // with the instance holding its caller. Either way, who runs the attempt is on record first.
    const takeOver = !mine;
    if (takeOver) {
      if (saga.mode === 'async') saga.own(this.rt.owner);
      saga.stepTaken(step.name, this.rt.owner);
    }
    if (!onRecord || takeOver) {
      saga.wakeAt(undefined);
      await this.rt.save(saga);
    }
    const result = await this.attempt(saga, def, step);
    try {
      await this.recordOutcome(saga, def, step, index, attempt, result);
    } catch (err) {
      if (this.rt.unrecorded.size < 100_000) this.rt.unrecorded.set(`${requestId}:${step.name}:${attempt}`, Date.now());
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
      await this.rt.abort(saga, def, step.name, result.error);
      return;
    }
    // A durable timer, not a sleep: whichever instance holds the lease publishes the next attempt when due.
    const at = new Date(Date.now() + wait);
    saga.stepRetrying(step.name, result.error.message, at);
    saga.wakeAt(at);
    await this.rt.save(saga);
  }

  /**
   * After step `index` succeeded: complete the saga, or record the next step as started with this
   * step's outcome (one write) and publish it. A redelivered message finds the next step already
   * on record and publishes nothing: whoever recorded it published it, or left a timer for recovery.
   */
  private async advance(saga: Saga, def: FacadeDefinition, index: number): Promise<void> {
    const next = def.steps[index + 1];
    if (!next) {
      await this.rt.finish(saga, def);
      return;
    }
    if (saga.step(next.name).status !== 'PENDING') return;
    saga.stepStarted(next.name);
    await this.rt.save(saga);
    await this.rt.publishStepOrRetryLater(saga, def, next, 'prerecorded');
  }

  /** One attempt of a step, bounded by its timeout, the saga deadline and the caller. */
  private async attempt(saga: Saga, def: FacadeDefinition, step: StepDefinition, callerSignal?: AbortSignal): Promise<Attempt> {
    const timeoutMs = step.timeoutMs ?? this.rt.options.stepTimeoutMs;
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
    const log = this.rt.sagaLog(saga, step.name);
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
    const policy = { ...this.rt.options.retry, ...step.retry };
    if (!isRetryable(error) || attempt >= policy.maxAttempts || signal?.aborted) return undefined;
    const wait = backoffMs(policy, attempt);
    const deadline = saga.deadline;
    if (deadline && Date.now() + wait >= deadline.getTime()) return undefined;
    return wait;
  }
}

/** Stops waiting for a step that ignores its AbortSignal. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
