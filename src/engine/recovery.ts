import { ensureError, StepError } from './errors';
import { currentStep, type SagaRuntime } from './runtime';
import { Saga } from './saga';

/**
 * Leases and recovery: renews this process's leases every heartbeat, and takes over the sagas
 * whose lease expired (their owner is gone) or whose durable timer is due.
 */
export class Recovery {
  private timer?: NodeJS.Timeout;
  private state: 'NEW' | 'RUNNING' | 'STOPPED' = 'NEW';
  private ticking = false;
  private lastHeartbeat = 0;

  constructor(private readonly rt: SagaRuntime) {}

  /** Runs a first pass now, then one every recoveryIntervalMs. */
  async start(): Promise<void> {
    this.state = 'RUNNING';
    // fire-and-forget: a pass that fails logs it, and the next one tries again
    this.timer = setInterval(() => void this.tick(), this.rt.options.recoveryIntervalMs);
    this.timer.unref();
    await this.tick();
  }

  /** No more renewals or claims: this process's leases lapse, and other instances take its sagas. */
  stop(): void {
    this.state = 'STOPPED';
    clearInterval(this.timer);
  }

  /** After stop(), at the end of a shutdown: other instances take this process's sagas at once. */
  async releaseLeases(): Promise<void> {
    const released = await this.rt.store.releaseLeases(this.rt.owner);
    if (released > 0) this.rt.log.info('leases released: other instances take these sagas over now', { sagas: released });
  }

  /** Renews this instance's leases, and takes over sagas whose lease expired or whose timer is due. */
  private async tick(): Promise<void> {
    if (this.ticking || this.state !== 'RUNNING') return;
    this.ticking = true;
    try {
      if (Date.now() - this.lastHeartbeat >= this.rt.options.heartbeatMs) {
        await this.rt.store.renewLeases(this.rt.owner, this.rt.releasedIds());
        this.lastHeartbeat = Date.now();
      }
      const claimed = await this.rt.store.claim(this.rt.owner, this.rt.options.recoveryBatch);
      for (const snapshot of claimed) {
        this.rt.released.delete(snapshot.requestId);
        await this.recover(Saga.adopt(snapshot, this.rt.podId)).catch((err: unknown) => this.rt.release(snapshot.requestId, err));
      }
    } catch (err) {
      this.rt.log.warn('recovery loop: store unavailable, will retry', { error: ensureError(err).message });
    } finally {
      this.ticking = false;
    }
  }

  private async recover(saga: Saga): Promise<void> {
    const def = this.rt.registry.find(saga.facade);
    const log = this.rt.sagaLog(saga);
    if (!def) {
      log.error('claimed a saga of an unknown facade: left as is');
      return;
    }
    if (saga.status === 'COMPENSATING') {
      const interrupted = saga.compensationInFlight();
      if (interrupted) {
        // Its lease lapsed mid-attempt: the instance running it is gone; the attempt counts as failed.
        saga.compensationAttemptFailed(interrupted, 'interrupted: the instance running it went away', false);
        await this.rt.save(saga);
      }
      log.info('recovery: republishing the rollback');
      await this.rt.publishRollbackOrRetryLater(saga, def);
      return;
    }
    const step = currentStep(saga, def);
    const callerHere = this.rt.calls.has(saga.requestId);
    // A sync saga's run retries in place, in its caller's call; a throttled one's retries come from timers, as async ones.
    if (saga.mode === 'sync' && callerHere) return;
    if (saga.mode !== 'async' && !callerHere) {
      log.warn('recovery: the caller of this saga is gone: compensating', { node: step.name });
      await this.rt.abort(saga, def, step.name, new StepError('CANCELLED', 'the instance holding the caller went away', false));
      return;
    }
    if (saga.pastDeadline) {
      await this.rt.abort(saga, def, step.name, new StepError('DEADLINE_EXCEEDED', 'saga deadline passed', false));
      return;
    }
    log.info('recovery: resuming at its current step', { node: step.name });
    // A new attempt, on record before its message leaves: the one its lost owner had may have run.
    saga.stepStarted(step.name);
    await this.rt.save(saga);
    await this.rt.publishStepOrRetryLater(saga, def, step, 'prerecorded');
  }
}
