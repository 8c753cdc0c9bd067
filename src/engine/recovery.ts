import { ensureError, StepError } from './errors';
import type { Events } from './events';
import { isStep } from './facade';
import { currentStep, type SagaRuntime } from './runtime';
import { nodeOf, Saga, type StepState } from './saga';
import type { Started } from './scheduler';

/** How far this process's clock may be behind the store's, which stamps leases and fires timers. */
const CLOCK_SKEW_MS = 1_000;

/**
 * Leases and recovery: renews this process's leases every heartbeat, and takes over the sagas
 * whose lease expired (their owner is gone) or whose durable timer is due.
 */
export class Recovery {
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private claiming = false;
  private renewing = false;
  private pass?: Promise<void>;
  private renewal?: Promise<void>;
  private first?: Promise<void>;

  constructor(private readonly rt: SagaRuntime, private readonly events: Events) {}

  /**
   * Renews leases every heartbeatMs, on a schedule of its own: a claim pass waiting on a slow
   * broker or store must not let this instance's leases lapse. Claims run every timerPollMs (due
   * timers) or recoveryIntervalMs, whichever is sooner, after a first pass now, in the background
   * (firstPass()): many lapsed leases to take over must not hold up the process's start.
   */
  start(): void {
    this.claiming = true;
    this.renewing = true;
    const { timerPollMs, recoveryIntervalMs, heartbeatMs } = this.rt.options;
    // fire-and-forget: a renewal or pass that fails logs it, and the next one tries again
    this.heartbeat = setInterval(() => void this.renew(), heartbeatMs);
    this.heartbeat.unref();
    this.timer = setInterval(() => void this.tick(), Math.min(timerPollMs, recoveryIntervalMs));
    this.timer.unref();
    this.first = this.tick();
  }

  /** Resolves once the first claim pass, started by start(), is done. */
  firstPass(): Promise<void> {
    return this.first ?? Promise.resolve();
  }

  /**
   * No more claims; leases are still renewed, for the work this process still has in hand.
   * Resolves when the pass under way, if any, is done: what it claimed is work in hand too.
   */
  stopClaims(): Promise<void> {
    this.claiming = false;
    clearInterval(this.timer);
    return this.pass ?? Promise.resolve();
  }

  /** No more claims or renewals: this process's leases lapse, and other instances take its sagas. */
  stop(): void {
    void this.stopClaims();
    this.renewing = false;
    clearInterval(this.heartbeat);
  }

  /** After stop(), at the end of a shutdown: other instances take this process's sagas at once. */
  async releaseLeases(): Promise<void> {
    // A renewal in flight would take back what the release let go.
    await this.renewal;
    const released = await this.rt.store.releaseLeases(this.rt.owner);
    if (released > 0) this.rt.log.info('leases released: other instances take these sagas over now', { sagas: released });
  }

  private renew(): Promise<void> {
    if (this.renewal || !this.renewing) return this.renewal ?? Promise.resolve();
    const renewal: Promise<void> = this.rt.store.renewLeases(this.rt.owner, this.rt.releasedIds()).then(
      () => undefined,
      (err: unknown) => void this.rt.log.warn('lease renewal: store unavailable, will retry', { error: ensureError(err).message }),
    ).finally(() => { this.renewal = undefined; });
    this.renewal = renewal;
    return renewal;
  }

  /** Takes over sagas whose lease expired or whose timer is due; one pass at a time. */
  private tick(): Promise<void> {
    if (this.pass || !this.claiming) return this.pass ?? Promise.resolve();
    this.pass = this.claimAndRecover().finally(() => { this.pass = undefined; });
    return this.pass;
  }

  private async claimAndRecover(): Promise<void> {
    try {
      // Only sagas of versions this process has: the others wait for an instance that has theirs.
      const versions = this.rt.registry.all().map((d) => `${d.name}@${d.version}`);
      const claimed = await this.rt.store.claim(this.rt.owner, this.rt.options.recoveryBatch, versions);
      // All at once: timers due together fire together (their writes share the store's batches).
      await Promise.all(claimed.map(async (snapshot) => {
        this.rt.released.delete(snapshot.requestId);
        await this.recover(Saga.adopt(snapshot, this.rt.podId)).catch((err: unknown) => this.rt.release(snapshot.requestId, err));
      }));
    } catch (err) {
      this.rt.log.warn('recovery loop: store unavailable, will retry', { error: ensureError(err).message });
    }
  }

  private async recover(saga: Saga): Promise<void> {
    const def = this.rt.registry.find(saga.facade, saga.version);
    const log = this.rt.sagaLog(saga);
    if (!def) {
      log.error('claimed a saga of an unknown facade: left as is');
      return;
    }
    if (saga.status === 'COMPENSATING') {
      const interrupted = saga.compensationInFlight();
      // Its lease lapsed: the instance running a compensation attempt, and the visits it ran, are gone; they count as failed.
      const cutOff = saga.view().leaseLapsed === true ? cutOffVisits(saga) : [];
      for (const v of cutOff) saga.stepFailed(v.name, 'interrupted: the instance running it went away');
      if (interrupted) saga.compensationAttemptFailed(interrupted, 'interrupted: the instance running it went away', false);
      if (interrupted || cutOff.length > 0) await this.rt.save(saga);
      log.debug('recovery: republishing the rollback');
      await this.rt.publishRollbackOrRetryLater(saga, def);
      return;
    }
    // The lease lapsed: whoever drove the saga is gone (or was cut off from the store) and what it ran may be lost.
    const lapsed = saga.view().leaseLapsed === true;
    const here = this.rt.calls.has(saga.requestId) || this.rt.driving.has(saga.requestId);
    if (lapsed && !here && saga.mode !== 'async' && !saga.detached) {
      const node = currentStep(saga);
      log.warn('recovery: the caller of this saga is gone: compensating', { node });
      // Whoever ran these is gone: they count as failed (they may have acted), and the rollback need not wait for them.
      for (const v of cutOffVisits(saga)) saga.stepFailed(v.name, 'interrupted: the instance running it went away');
      await this.rt.abort(saga, def, node, new StepError('CANCELLED', 'the instance holding the caller went away', false));
      return;
    }
    // Claimed at its deadline (Postgres' clock): a local clock a little behind must not read it as a
    // timer no visit has, which would send the running steps again.
    if (saga.deadline !== undefined && saga.deadline.getTime() <= Date.now() + CLOCK_SKEW_MS) {
      await this.rt.abort(saga, def, currentStep(saga), new StepError('DEADLINE_EXCEEDED', 'expired: the saga deadline passed', false));
      return;
    }
    const now = Date.now();
    const due = saga.due(now);
    if (due.length > 0) this.rt.metrics.timersFired(due.map((v) => now - Date.parse(v.wakeAt!)));
    const sched = this.rt.scheduler(def);
    const claimed = saga.revision;
    const attemptsAtClaim = new Map(saga.steps.map((v) => [v.name, v.attempts]));
    const move = await this.rt.update(saga, (s) => {
      const resumed: Started = { steps: [], commands: [] };
      // Claimed for a timer no visit has: a message that could not be published then. Either way
      // (that, or a lapsed lease), what may not be under way is sent again, as a new attempt on
      // record before it runs; in-process runs here go on by themselves. A saga another writer moved
      // since the claim (an event that beat the timer) has no such timer: that writer sent its work.
      const moved = s.revision !== claimed;
      const resend = lapsed || (!moved && s.due().length === 0);
      const runningHere = here && s.mode === 'sync';
      for (const v of resend ? s.steps : []) {
        // A visit (or attempt) the other writer started since the claim is that writer's to send.
        if (moved && attemptsAtClaim.get(v.name) !== v.attempts) continue;
        const node = this.rt.graph(def).node(nodeOf(v.name));
        if (v.status === 'RUNNING' && isStep(node) && !runningHere) {
          s.stepStarted(v.name);
          resumed.steps.push(v.name);
        } else if (v.status === 'WAITING' && node.kind === 'external') resumed.commands.push(v.name);
      }
      const fired = sched.fire(s);
      if (fired.kind === 'continue') {
        fired.started.steps.push(...resumed.steps);
        fired.started.commands.push(...resumed.commands);
      }
      return this.rt.conclude(s, def, fired);
    });
    if (!move) return;
    if (move.kind === 'continue' && move.started.steps.length + move.started.commands.length > 0) {
      log.info('recovery: resuming', { steps: move.started.steps, commands: move.started.commands });
    }
    await this.events.continue(saga, def, move);
  }
}

/**
 * The running visits of a saga whose lease lapsed that ran on the owner that let it lapse (no
 * runner on record: the owner's own). A visit another instance took (a throttled step runs where it
 * was consumed) may still act: the rollback waits for its outcome rather than undo it first.
 */
function cutOffVisits(saga: Saga): readonly StepState[] {
  const gone = saga.view().lapsedOwner;
  return saga.steps.filter((v) => v.status === 'RUNNING' && (v.runner === undefined || v.runner === gone));
}
