import { ensureError, SagaAbortedError, errorCode, NotFoundError, PoisonMessageError } from './errors';
import type { FacadeDefinition, StepDefinition } from './facade';
import type { Logger } from './logger';
import { encodeMessage, type SagaMessage } from './messages';
import type { EngineOptions } from './options';
import { Outcomes } from './outcomes';
import { RecentSagas } from './recent';
import type { FacadeRegistry } from './registry';
import { Saga } from './saga';
import type { SagaStore } from './store';
import type { Message, Transport } from './transport';

/**
 * What every part of the engine shares: the store, the transport, who this process is, and the
 * plumbing every saga change goes through: fenced saves, publishes that fall back to a timer,
 * the end of a saga (completed, or handed to its rollback), and sagas given up after a failure.
 */
export class SagaRuntime {
  /** The lease holder: this run of the pod (`<podId>/<start id>`). Leases belong to it, not to the pod id. */
  readonly owner: string;
  readonly outcomes = new Outcomes();
  readonly recent: RecentSagas;
  /** Sync and throttled sagas whose caller this instance holds: concurrent duplicates share one run. */
  readonly calls = new Map<string, Promise<unknown>>();
  /**
   * Sagas this process gave up on (a store or broker failure left them half-handled): their leases
   * are no longer renewed, so that recovery (here or elsewhere) takes them over. By request id, when.
   */
  readonly released = new Map<string, number>();
  /**
   * Step attempts this process ran whose outcome it could not store (the store failed after the
   * step acted): when their message is handled again, a new attempt is recorded, not the same one
   * run twice under one number. By `requestId:step:attempt`, when.
   */
  readonly unrecorded = new Map<string, number>();

  constructor(
    readonly registry: FacadeRegistry,
    readonly store: SagaStore,
    readonly transport: Transport,
    readonly log: Logger,
    readonly podId: string,
    incarnation: string,
    readonly outcomeTopic: string,
    readonly options: EngineOptions,
  ) {
    this.owner = `${podId}/${incarnation}`;
    this.recent = new RecentSagas(10_000, this.silenceMs());
  }

  async finish(saga: Saga, def: FacadeDefinition): Promise<unknown> {
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
  async abort(saga: Saga, def: FacadeDefinition, failedNode: string, error: Error): Promise<SagaAbortedError> {
    saga.startCompensating(failedNode, error.message, errorCode(error));
    saga.wakeAt(undefined);
    await this.save(saga);
    await this.publishRollbackOrRetryLater(saga, def);
    await this.announce(saga);
    this.sagaLog(saga, failedNode).warn('saga aborted: rollback published', { error: error.message });
    return new SagaAbortedError(saga.requestId, failedNode, errorCode(error), error.message);
  }

  /** `prerecorded`: the attempt the message asks for is the one on record, else the next one. */
  async publishStepOrRetryLater(saga: Saga, def: FacadeDefinition, step: StepDefinition, attempt: 'prerecorded' | 'next' = 'next'): Promise<void> {
    const { attempts } = saga.step(step.name);
    await this.publishOrRetryLater(saga, encodeMessage(step.topic!, {
      kind: 'step', requestId: saga.requestId, facade: def.name, version: def.version, node: step.name,
      attempt: attempt === 'prerecorded' ? attempts : attempts + 1, input: saga.input, results: saga.results(),
    }));
  }

  async publishRollbackOrRetryLater(saga: Saga, def: FacadeDefinition): Promise<void> {
    const snapshot = saga.view();
    const failed = snapshot.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
    await this.publishOrRetryLater(saga, encodeMessage(def.rollbackTopic, {
      kind: 'rollback', requestId: saga.requestId, facade: def.name, version: def.version,
      failedNode: failed?.step ?? def.steps[0].name, error: { code: 'SAGA_ABORTED', message: snapshot.error ?? '' },
      completed: Object.entries(saga.results()).map(([node, output]) => ({ node, output })), input: saga.input,
    }));
  }

  /** A message that cannot be published now is not lost: the saga gets a timer, and recovery publishes it. */
  async publishOrRetryLater(saga: Saga, message: Message): Promise<void> {
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
  release(requestId: string, err: unknown): Error {
    const error = ensureError(err);
    this.released.set(requestId, Date.now());
    this.log.warn('saga given up after a failure: recovery takes it over once its lease lapses', { requestId, error: error.message });
    return error;
  }

  /**
   * A lease older than this was not renewed by two heartbeats in a row: its owner is gone. Well under
   * Kafka's session timeout (10 s), after which a dead consumer's messages are delivered elsewhere.
   */
  silenceMs(): number {
    return 2 * this.options.heartbeatMs + 1_000;
  }

  /** The sagas released within the last two lease TTLs: by then their leases have lapsed and been claimed. */
  releasedIds(): string[] {
    const before = Date.now() - 2 * this.options.leaseTtlMs;
    for (const [id, at] of this.released) if (at < before) this.released.delete(id);
    // A message held through a long store outage is handled again within the hour, or by another instance.
    for (const [key, at] of this.unrecorded) if (at < Date.now() - 3_600_000) this.unrecorded.delete(key);
    return [...this.released.keys()];
  }

  /** Wakes the instance holding a throttled call, wherever the saga moved on. */
  async announce(saga: Saga): Promise<void> {
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

  async load(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw new NotFoundError(`saga ${requestId}`);
    return Saga.adopt(snapshot, this.podId);
  }

  /**
   * For messages: the copy this instance kept when it published, else the store's. A copy may be
   * behind the store; a write from it is fenced, but a decision to do nothing is not: unless the
   * copy passes `usable`, the store is asked.
   */
  async findRecent(requestId: string, usable: (saga: Saga) => boolean): Promise<Saga> {
    const recent = this.recent.take(requestId);
    if (recent) {
      const saga = Saga.adopt(recent, this.podId);
      if (usable(saga)) return saga;
    }
    return this.find(requestId);
  }

  /** Like load(), for messages: a message about a saga the store does not know can never be handled. */
  async find(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw new PoisonMessageError(`unknown saga ${requestId}`);
    return Saga.adopt(snapshot, this.podId);
  }

  async save(saga: Saga): Promise<void> {
    saga.saved(await this.store.save(saga.view(), saga.changes()));
    // Ours again (e.g. a redelivered message took it up): its lease is renewed again.
    if (this.released.size > 0) this.released.delete(saga.requestId);
  }

  sagaLog(saga: Saga, node?: string): Logger {
    return this.log.child(node ? { requestId: saga.requestId, facade: saga.facade, node } : { requestId: saga.requestId, facade: saga.facade });
  }
}

/** The first step that has not succeeded (the last one if all have). */
export function currentStep(saga: Saga, def: FacadeDefinition): StepDefinition {
  return def.steps.find((s) => saga.step(s.name).status !== 'SUCCEEDED') ?? def.steps[def.steps.length - 1];
}

/** The pod id of an owner (`<podId>/<start id>`). */
export function podOf(owner: string | undefined): string | undefined {
  return owner?.slice(0, owner.lastIndexOf('/'));
}
