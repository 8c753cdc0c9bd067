import { ensureError } from './errors';
import type { FacadeDefinition, StepDefinition } from './facade';
import { backoffMs } from './retry';
import type { SagaRuntime } from './runtime';
import type { Saga } from './saga';
import { untilAborted } from './steps';

/** The rollback consumer: how a failed saga's steps are undone, and in which order. */
export class Compensator {
  /** Sagas whose compensation runs in this process now. */
  private readonly compensating = new Set<string>();

  constructor(private readonly rt: SagaRuntime) {}

  /**
   * The rollback consumer: compensates every step that may have acted, in reverse order, one attempt
   * at a time. A failed attempt is retried by a durable timer, not a sleep: the message is done, and
   * recovery publishes the rollback again when the timer is due. A message is held at most about one
   * attempt past stepTimeoutMs, so that the consumer stays in its group whatever the upstreams do.
   */
  async handleRollback(def: FacadeDefinition, requestId: string): Promise<void> {
    const saga = await this.rt.findRecent(requestId, (s) => s.status === 'COMPENSATING');
    const log = this.rt.sagaLog(saga);
    if (saga.status !== 'COMPENSATING') {
      log.debug('rollback message for a saga not compensating: skipped', { sagaStatus: saga.status });
      return;
    }
    const inFlight = saga.compensationInFlight();
    if (this.compensating.has(requestId) || (inFlight && saga.owner !== this.rt.owner)) {
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
    saga.own(this.rt.owner);
    saga.wakeAt(undefined);
    const log = this.rt.sagaLog(saga);
    const began = Date.now();
    const started = def.steps.filter((s) => saga.step(s.name).attempts > 0).reverse();
    for (const step of started) {
      if (!step.compensate || saga.step(step.name).status === 'COMPENSATED') continue;
      if (Date.now() - began >= this.rt.options.stepTimeoutMs) {
        // Held long enough: the rest goes on from a timer, through the rollback topic again.
        saga.wakeAt(new Date());
        await this.rt.save(saga);
        return;
      }
      const outcome = await this.compensateOnce(saga, def, step);
      if (outcome === 'compensated') continue;
      if (outcome instanceof Date) {
        saga.wakeAt(outcome);
        await this.rt.save(saga);
        return;
      }
      saga.compensationFailed(`compensation of ${step.name} failed after ${saga.step(step.name).compensationAttempts} attempts: ${outcome.message}`);
      await this.rt.save(saga);
      await this.rt.announce(saga);
      log.error('saga COMPENSATION_FAILED: RetryCompensation resumes it', { node: step.name, error: outcome.message });
      return;
    }
    saga.compensated();
    await this.rt.save(saga);
    await this.rt.announce(saga);
    log.info('saga compensated');
  }

  /** One attempt, written ahead: 'compensated', when the next attempt is due, or the last error once attempts are exhausted. */
  private async compensateOnce(saga: Saga, def: FacadeDefinition, step: StepDefinition): Promise<'compensated' | Date | Error> {
    const policy = this.rt.options.compensation;
    const log = this.rt.sagaLog(saga, step.name);
    const attempt = saga.compensationStarted(step.name);
    await this.rt.save(saga);
    const signal = AbortSignal.timeout(step.timeoutMs ?? this.rt.options.stepTimeoutMs);
    try {
      await untilAborted(step.compensate!({
        requestId: saga.requestId, facade: def.name, step: step.name, attempt,
        idempotencyKey: `${saga.requestId}:${step.name}:compensate`, input: saga.input, results: saga.results(),
        signal, log, output: saga.step(step.name).output,
      }), signal);
      saga.compensationSucceeded(step.name);
      await this.rt.save(saga);
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
}
