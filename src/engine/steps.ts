import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, errorCode, StepError } from './errors';
import type { FacadeDefinition, StepDefinition } from './facade';
import { checkPayload } from './payload';
import { backoffMs, isRetryable } from './retry';
import { podOf, type SagaRuntime } from './runtime';
import { nodeOf, visitKey, visitOf, type Saga } from './saga';
import type { Advance } from './scheduler';
import { ATTR, inSpan, recordError, sagaContext } from './tracing';
import type { Span } from '@opentelemetry/api';

type Attempt = { ok: true; output: unknown } | { ok: false; error: Error };

/** How an in-process run ended: done (completed or aborted), or parked on waits, sleeps or replies. */
export type DriveResult = 'ended' | 'parked';

/**
 * Runs step visits: in-process (sync facades) several at once, retries in place; from their
 * topics (async and throttled) one message at a time, retries from durable timers. Each attempt is
 * on record before it can act, and each outcome is recorded with what it starts next in one write.
 */
export class StepRunner {
  /**
   * Step messages this process is handling now, by `${requestId}:${visit key}:${attempt}`. A copy
   * of one handled meanwhile (delivered again while the first is in hand) finds the attempt on
   * record as this process's and would run it a second time, concurrently: it is skipped, the first
   * handling records the outcome (or, if it cannot, gives its message back to be handled again).
   * The message of a later attempt (a retry) is another message, and is not held up.
   */
  private readonly inHand = new Set<string>();

  constructor(private readonly rt: SagaRuntime) {}

  /**
   * Sync facades: runs the started step visits here, concurrently, and whatever they lead to,
   * until the saga ends or parks. When a visit fails for good, the others are aborted through their
   * signal and their outcome awaited before the saga is handed to its rollback.
   */
  async drive(saga: Saga, def: FacadeDefinition, started: readonly string[], callerSignal?: AbortSignal): Promise<DriveResult> {
    const running = new Map<string, { done: Promise<[string, Attempt | 'lost']>; controller: AbortController }>();
    const launch = (key: string) => {
      const controller = new AbortController();
      const onCaller = () => controller.abort(callerSignal!.reason);
      if (callerSignal?.aborted) onCaller();
      else callerSignal?.addEventListener('abort', onCaller, { once: true });
      const done = this.runHere(saga, def, key, controller.signal)
        .then((r): [string, Attempt | 'lost'] => [key, r])
        .finally(() => callerSignal?.removeEventListener('abort', onCaller));
      running.set(key, { done, controller });
    };
    started.forEach(launch);
    while (running.size > 0) {
      const [key, result] = await Promise.race([...running.values()].map((r) => r.done));
      running.delete(key);
      if (result === 'lost') continue;
      const attempt = saga.step(key).attempts;
      const move = await this.rt.update(saga, (s) => (this.isCurrent(s, key, attempt) ? this.recordResult(s, def, key, result) : settledLate(s, key, attempt, result)));
      if (!move || move === 'recorded') continue;
      if (move.kind === 'fail') {
        await this.abortSiblings(saga, running);
        await this.rt.effects(saga, def, move);
        return 'ended';
      }
      await this.rt.effects(saga, def, move);
      if (move.kind === 'complete') return 'ended';
      move.started.steps.forEach(launch);
    }
    return saga.status === 'RUNNING' ? 'parked' : 'ended';
  }

  /**
   * Async and throttled facades: one step visit, on whichever instance consumed its message.
   * Whoever publishes a visit's first message records the attempt as started in the write before
   * it (write ahead), so the consumer of that attempt runs it without a write of its own. A
   * message for an attempt not on record, or for one that may have run (its owner is gone, another
   * process took it, or this one ran it and could not store the outcome), records a new attempt first.
   */
  async handleStep(def: FacadeDefinition, step: StepDefinition, requestId: string, visit: number, messageAttempt: number): Promise<void> {
    const key = visitKey(step.name, visit);
    const applies = (s: Saga) => s.status === 'RUNNING' && ['RUNNING', 'RETRYING', 'SUCCEEDED'].includes(s.find(key)?.status ?? '');
    const saga = await this.rt.findRecent(requestId, applies);
    const log = this.rt.sagaLog(saga, step.name);
    if (!applies(saga)) {
      log.debug('step message not applicable: skipped', { sagaStatus: saga.status, visit: saga.find(key)?.status });
      // A sibling failed before this visit ran: on record as never run, so that the rollback need not wait for it.
      const never = (s: Saga) => s.status === 'COMPENSATING' && s.find(key)?.status === 'RUNNING' && s.step(key).attempts === messageAttempt;
      if (never(saga)) await this.rt.update(saga, (s) => (never(s) ? (s.stepFailed(key, 'never ran: the saga was already being compensated'), true) : undefined));
      return;
    }
    const st = saga.step(key);
    if (st.status === 'SUCCEEDED') {
      // A redelivery: its outcome and what it started were recorded in one write, and published.
      log.debug('step message of a visit already done: skipped', { visit });
      return;
    }
    if (saga.pastDeadline) {
      await this.rt.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'expired: the saga deadline passed', false));
      return;
    }
    if (messageAttempt < st.attempts || (st.status === 'RETRYING' && messageAttempt === st.attempts)) {
      // A redelivery of an attempt that a later one replaced (its message is on its way) or that failed (its retry has a timer).
      log.debug('step message of a past attempt: skipped', { messageAttempt, attempts: st.attempts });
      return;
    }
    const inHand = `${requestId}:${key}:${messageAttempt}`;
    if (this.inHand.has(inHand)) {
      log.debug('step message being handled here already: skipped', { messageAttempt, attempts: st.attempts });
      return;
    }
    this.inHand.add(inHand);
    try {
      await this.takeAndRun(saga, def, step, key, messageAttempt);
    } finally {
      this.inHand.delete(inHand);
    }
  }

  /** handleStep, once the message applies: the attempt on record as this process's (a new one if it may have run), run, its outcome recorded. */
  private async takeAndRun(saga: Saga, def: FacadeDefinition, step: StepDefinition, key: string, messageAttempt: number): Promise<void> {
    const requestId = saga.requestId;
    const log = this.rt.sagaLog(saga, step.name);
    const st = saga.step(key);
    const mine = saga.owner === this.rt.owner;
    // The owner is gone: an earlier run of this pod, or a process that no longer renews its lease.
    // Its own consumer may have run the attempt on record without a write.
    const ownerGone = !mine && (podOf(saga.owner) === this.rt.podId || (saga.leaseAgeMs ?? 0) > this.rt.silenceMs());
    if (ownerGone && saga.mode === 'throttled') {
      log.info('step message of a throttled saga whose caller died with its instance: recovery compensates it', { owner: saga.owner });
      return;
    }
    const ranHere = this.rt.unrecorded.delete(`${requestId}:${key}:${st.attempts}`);
    const mayHaveRun = ownerGone || st.runner !== undefined || ranHere;
    const onRecord = st.status === 'RUNNING' && st.attempts === messageAttempt && !mayHaveRun;
    if (!onRecord) saga.stepStarted(key);
    // Another process's saga: the lease of an async one follows its work; a throttled one stays
    // with the instance holding its caller. Either way, who runs the attempt is on record first.
    if (!mine) {
      if (saga.mode === 'async') saga.own(this.rt.owner);
      saga.stepTaken(key, this.rt.owner);
    }
    if (!onRecord || !mine) {
      saga.rearm();
      await this.rt.save(saga);
    }
    const attempt = saga.step(key).attempts;
    // The span covers what the outcome sends on too: the next steps' messages carry it as their parent.
    await this.traced(saga, def, key, async (span) => {
      const result = await this.attempt(saga, def, step, key, undefined, span);
      try {
        const move = await this.rt.update(saga, (s) => (this.isCurrent(s, key, attempt) ? this.recordResult(s, def, key, result) : settledLate(s, key, attempt, result)));
        if (move && move !== 'recorded') await this.rt.effects(saga, def, move);
      } catch (err) {
        if (this.rt.unrecorded.size < 100_000) this.rt.unrecorded.set(`${requestId}:${key}:${attempt}`, Date.now());
        throw err;
      }
    });
  }

  /** A span per step attempt, under the saga's trace (see sagaContext). */
  private traced<T>(saga: Saga, def: FacadeDefinition, key: string, fn: (span: Span) => Promise<T>): Promise<T> {
    const node = nodeOf(key);
    return inSpan(`step ${node}`, sagaContext(saga.traceParent), {
      [ATTR.requestId]: saga.requestId, [ATTR.facade]: def.name, [ATTR.version]: def.version, [ATTR.mode]: def.mode,
      [ATTR.node]: node, [ATTR.visit]: visitOf(key), [ATTR.attempt]: saga.step(key).attempts,
    }, fn);
  }

  /** The visit's attempt is still the one this process ran, in a running saga. */
  private isCurrent(saga: Saga, key: string, attempt: number): boolean {
    const v = saga.find(key);
    return saga.status === 'RUNNING' && v?.status === 'RUNNING' && v.attempts === attempt;
  }

  /**
   * Inside a change: an attempt's outcome and what it starts, or its retry's timer (async: a durable
   * timer, which whichever instance holds the lease fires; sync: the run retries in place).
   */
  private recordResult(saga: Saga, def: FacadeDefinition, key: string, result: Attempt | { retryAt: Date; error: Error }): Advance {
    const sched = this.rt.scheduler(def);
    if ('retryAt' in result) {
      saga.stepRetrying(key, result.error.message, result.retryAt);
      return this.rt.conclude(saga, def, { kind: 'continue', started: { steps: [], commands: [] } });
    }
    if (result.ok) {
      const outcome = sched.succeed(saga, key, result.output);
      return this.rt.conclude(saga, def, outcome.kind === 'fail' ? outcome : sched.advance(saga, outcome.picks));
    }
    const retryAt = def.mode === 'sync' ? undefined : this.retryAt(saga, def, key, result.error);
    if (retryAt) return this.recordResult(saga, def, key, { retryAt, error: result.error });
    saga.stepFailed(key, result.error.message);
    return this.rt.conclude(saga, def, { kind: 'fail', node: nodeOf(key), error: result.error });
  }

  /** In-process: one visit, its retries in place. 'lost': someone else moved the saga on meanwhile. */
  private async runHere(saga: Saga, def: FacadeDefinition, key: string, signal: AbortSignal): Promise<Attempt | 'lost'> {
    const step = this.rt.graph(def).node(nodeOf(key)) as StepDefinition;
    for (;;) {
      const attempt = saga.step(key).attempts;
      const result = await this.traced(saga, def, key, (span) => this.attempt(saga, def, step, key, signal, span));
      if (result.ok) return result;
      const retryAt = this.retryAt(saga, def, key, result.error, signal);
      if (!retryAt) return result;
      const noted = await this.rt.update(saga, (s) => (this.isCurrent(s, key, attempt) ? (s.stepRetrying(key, result.error.message, retryAt), true) : undefined));
      if (!noted) return 'lost';
      await sleep(retryAt.getTime() - Date.now(), undefined, { signal }).catch(() => undefined);
      const again = await this.rt.update(saga, (s) => (s.status === 'RUNNING' && s.find(key)?.status === 'RETRYING' ? (s.stepStarted(key), true) : undefined));
      if (!again) return 'lost';
    }
  }

  /** A failed visit ends the saga: the others running here are aborted, and their outcome recorded. */
  private async abortSiblings(saga: Saga, running: Map<string, { done: Promise<[string, Attempt | 'lost']>; controller: AbortController }>): Promise<void> {
    if (running.size === 0) return;
    for (const r of running.values()) r.controller.abort(new StepError('CANCELLED', 'a sibling step failed', false));
    const results = await Promise.all([...running.values()].map((r) => r.done));
    const attempts = new Map(results.map(([key]) => [key, saga.step(key).attempts]));
    await this.rt.update(saga, (s) => {
      let changed = false;
      for (const [key, result] of results) {
        if (result === 'lost' || s.find(key)?.status !== 'RUNNING' || s.step(key).attempts !== attempts.get(key)) continue;
        if (result.ok) s.stepSucceeded(key, result.output);
        else s.stepFailed(key, result.error.message);
        changed = true;
      }
      return changed || undefined;
    });
  }

  /** One attempt of a step, bounded by its timeout, the saga deadline and the caller (or a failed sibling). */
  private async attempt(saga: Saga, def: FacadeDefinition, step: StepDefinition, key: string, outerSignal?: AbortSignal, span?: Span): Promise<Attempt> {
    const timeoutMs = step.timeoutMs ?? this.rt.options.stepTimeoutMs;
    const deadline = saga.deadline;
    const untilDeadline = deadline ? Math.max(0, deadline.getTime() - Date.now()) : Infinity;
    // One controller and one timer for whichever comes first: the step's timeout, the saga's deadline or the caller.
    let cut: 'timeout' | 'deadline' | 'outer' | undefined;
    const controller = new AbortController();
    const abort = (why: typeof cut, reason?: unknown) => {
      cut ??= why;
      controller.abort(reason);
    };
    const timer = setTimeout(() => abort(untilDeadline < timeoutMs ? 'deadline' : 'timeout'), Math.min(timeoutMs, untilDeadline));
    const onOuter = () => abort('outer', outerSignal!.reason);
    if (outerSignal?.aborted) onOuter();
    else outerSignal?.addEventListener('abort', onOuter, { once: true });
    const { signal } = controller;
    const st = saga.step(key);
    const log = this.rt.sagaLog(saga, step.name);
    try {
      const output = await untilAborted(step.run({
        requestId: saga.requestId, facade: def.name, step: step.name, visit: visitOf(key), attempt: st.attempts,
        idempotencyKey: `${saga.requestId}:${key}`, input: saga.input, results: saga.results(), signal, deadline, log,
      }), signal);
      checkOutput(output ?? null, step.name, this.rt.options.maxPayloadBytes);
      log.info('step succeeded', { attempt: st.attempts, visit: visitOf(key) });
      span?.setAttribute(ATTR.outcome, 'succeeded');
      return { ok: true, output: output ?? null };
    } catch (err) {
      let error = ensureError(err);
      if (cut === 'deadline') error = new StepError('DEADLINE_EXCEEDED', `saga deadline passed during ${step.name}`, false);
      else if (cut === 'outer') error = outerError(outerSignal!.reason);
      else if (cut === 'timeout') error = new StepError('DEADLINE_EXCEEDED', `${step.name} timed out after ${timeoutMs} ms`, true);
      log.warn('step attempt failed', { attempt: st.attempts, error: error.message, code: errorCode(error), retryable: isRetryable(error) });
      if (span) {
        span.setAttribute(ATTR.outcome, isRetryable(error) ? 'failed_retryable' : 'failed');
        recordError(span, error);
      }
      return { ok: false, error };
    } finally {
      clearTimeout(timer);
      outerSignal?.removeEventListener('abort', onOuter);
    }
  }

  /** When the next attempt is due, or undefined when the step must not be retried. */
  private retryAt(saga: Saga, def: FacadeDefinition, key: string, error: Error, signal?: AbortSignal): Date | undefined {
    const step = this.rt.graph(def).node(nodeOf(key)) as StepDefinition;
    const policy = { ...this.rt.options.retry, ...step.retry };
    const attempt = saga.step(key).attempts;
    if (!isRetryable(error) || attempt >= policy.maxAttempts || signal?.aborted) return undefined;
    const at = Date.now() + backoffMs(policy, attempt);
    const deadline = saga.deadline;
    if (deadline && at >= deadline.getTime()) return undefined;
    return new Date(at);
  }
}

/**
 * Inside a change: the outcome of an attempt that ended after its saga was aborted (a sibling
 * failed, a cancel, the deadline). Recorded all the same: the rollback waits for running visits,
 * and undoes this one with its output. 'recorded', or undefined when the attempt is no longer current.
 */
function settledLate(saga: Saga, key: string, attempt: number, result: Attempt): 'recorded' | undefined {
  if (saga.status !== 'COMPENSATING' || saga.find(key)?.status !== 'RUNNING' || saga.step(key).attempts !== attempt) return undefined;
  if (result.ok) saga.stepSucceeded(key, result.output);
  else saga.stepFailed(key, result.error.message);
  return 'recorded';
}

/**
 * An output the store cannot keep, or over the payload limit, fails the visit for good: no attempt
 * would return anything else, and stored it would fail every write of the saga (bad text) or weigh
 * on every one (size). The saga is compensated, the step's own output not on record.
 */
function checkOutput(output: unknown, step: string, maxBytes: number): void {
  try {
    checkPayload(output, `output of ${step}`, maxBytes);
  } catch (err) {
    throw new StepError('INVALID_ARGUMENT', (err as Error).message, false);
  }
}

/** The caller went away, or a sibling failed: the reason, as the error the attempt ends with. */
function outerError(reason: unknown): Error {
  if (reason instanceof StepError) return reason;
  return new StepError('CANCELLED', 'the caller went away', false);
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
