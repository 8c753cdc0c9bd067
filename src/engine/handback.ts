import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, OrchestratorError, PoisonMessageError } from './errors';
import { settledVisit, type Events } from './events';
import type { FacadeDefinition } from './facade';
import { encodeMessage, type EventWork, type HandbackMessage, type ReplyWork, type RollbackMessage, type StepMessage } from './messages';
import type { SagaRuntime } from './runtime';
import { Saga, visitOf, type SagaSnapshot } from './saga';

type Work = StepMessage | RollbackMessage;

/**
 * A mixed deployment (a rolling update: some instances have a facade's new version, some not yet)
 * shares one consumer group, so a message for a saga of the new version may reach an instance that
 * lacks it. That instance cannot handle it and must not drop it: it broadcasts it back.
 *
 * A step or rollback message goes to the saga's owner, which has the version (it published the
 * message) and handles it in process; should the owner die meanwhile, its lease lapses and an
 * instance that has the version takes the saga over and sends the work again.
 *
 * An event or a step reply comes from outside: nobody would send it again. It goes to the saga's
 * live owner, and its record is committed only once the owner has it (see handBackAnswer); an
 * owner found silent when it arrives, or a parked saga's absent one, is stood in for by every
 * instance that has the version. Its
 * idempotency key (events) or pinned visit (replies) makes each try after the first a no-op.
 */
export class Handback {
  constructor(
    private readonly rt: SagaRuntime,
    /** Handles a step or rollback message as if it had come on its topic. */
    private readonly handle: (def: FacadeDefinition, topic: string, msg: Work) => Promise<void>,
    private readonly events: Events,
  ) {}

  /** On a node or rollback topic: a message of a version this process does not have. */
  async handBack(topic: string, msg: Work): Promise<void> {
    const saga = await this.rt.store.get(msg.requestId);
    if (!saga) throw new PoisonMessageError(`unknown facade ${msg.facade} version ${msg.version}, and no saga ${msg.requestId}`);
    if (saga.facade !== msg.facade || saga.version !== msg.version) {
      throw new PoisonMessageError(`saga ${msg.requestId} is ${saga.facade} version ${saga.version}, not ${msg.facade} version ${msg.version}`);
    }
    await this.broadcast(saga, topic, msg);
  }

  /**
   * On the events or step-replies topic: an event or reply for a saga of a version this process
   * does not have. Nobody would send it again, so the record is committed only once the saga's
   * owner (which has the version) has it: while the saga has no live owner (it died; an instance
   * with the version claims the saga once its lease lapses) or the owner went away before applying
   * it, the message waits here uncommitted (a retryable failure) and is handed back again. A reply
   * without a visit is pinned to the node's latest visit now, so that every try settles that one.
   */
  async handBackAnswer(topic: string, work: EventWork | ReplyWork): Promise<void> {
    const saga = await this.rt.store.get(work.requestId);
    if (!saga) throw new PoisonMessageError(`saga ${work.requestId} not found`);
    const view = Saga.adopt(saga, this.rt.podId);
    if (saga.status !== 'RUNNING') {
      // What an instance with the version would say (a repeated event was found in Events.send already).
      if (work.kind === 'reply' && settledVisit(view, work.step, work.visit)) return;
      throw new PoisonMessageError(`FAILED_PRECONDITION: saga ${saga.requestId} is ${saga.status}: ${work.kind === 'event' ? `event ${work.event}` : `the outcome of ${work.step}`} can no longer change it`);
    }
    if (this.silent(saga)) throw this.waiting(saga, work, 'has no live owner yet');
    let pinned = work;
    if (work.kind === 'reply' && work.visit === undefined) {
      const latest = view.latest(work.step);
      if (latest) pinned = { ...work, visit: visitOf(latest.name) };
    }
    await this.broadcast(saga, topic, pinned);
    await this.applied(saga, pinned);
  }

  /**
   * Resolves once the saga has the event or reply, or has moved past where it could take it, or
   * its owner, still live after a silence's length, has had time to apply it (or refuse it: it
   * dead-letters what can never apply). Throws a retryable error when the owner went away first,
   * or when a parked saga (no owner) did not get it within that time.
   */
  private async applied(sent: SagaSnapshot, work: EventWork | ReplyWork): Promise<void> {
    const until = Date.now() + this.rt.silenceMs();
    for (;;) {
      await sleep(this.rt.options.outcomePollMs);
      const saga = await this.rt.store.get(sent.requestId);
      if (!saga || saga.status !== 'RUNNING') return;
      const view = Saga.adopt(saga, this.rt.podId);
      if (work.kind === 'event' ? view.hasEvent(work.idempotencyKey) : settledVisit(view, work.step, work.visit)) return;
      if (this.silent(saga) || saga.owner !== sent.owner) throw this.waiting(saga, work, `lost its owner ${sent.owner ?? ''} before it was applied`);
      if (Date.now() < until) continue;
      // Parked (no owner): every instance with the version was told; none applied it, so none is live yet.
      if (sent.owner === undefined) throw this.waiting(saga, work, 'was not applied by any instance: none with the version is live');
      return;
    }
  }

  private waiting(saga: SagaSnapshot, work: EventWork | ReplyWork, why: string): OrchestratorError {
    return new OrchestratorError('UNAVAILABLE', `saga ${saga.requestId} (${saga.facade} version ${saga.version}, which this instance does not have) ${why}: the ${work.kind} waits to be handed back again`, true);
  }

  private async broadcast(saga: SagaSnapshot, topic: string, message: HandbackMessage['message']): Promise<void> {
    const back: HandbackMessage = { kind: 'handback', requestId: saga.requestId, facade: saga.facade, version: saga.version, topic, message, from: this.rt.owner };
    await this.rt.transport.publish(encodeMessage(this.rt.outcomeTopic, back));
    this.rt.log.info('message for a facade version this instance does not have: handed back to an instance that has it',
      { requestId: saga.requestId, facade: saga.facade, version: saga.version, kind: message.kind, topic, owner: saga.owner });
  }

  /** On the broadcast topic: the instance that should take it does; every other instance ignores it. */
  async takeBack(msg: HandbackMessage): Promise<void> {
    const def = this.rt.registry.find(msg.facade, msg.version);
    if (!def) return;
    const saga = await this.rt.store.get(msg.requestId);
    const work = msg.message;
    if (work.kind === 'event' || work.kind === 'reply') {
      // The owner; should it have died since the message was handed back, or the saga have none
      // (parked), every instance with the version: the idempotency key or pinned visit makes one apply it.
      if (!saga || (saga.owner !== undefined && saga.owner !== this.rt.owner && !this.silent(saga))) return;
      await this.apply(work, msg);
      return;
    }
    if (saga?.owner !== this.rt.owner) return;
    const log = this.rt.sagaLog({ requestId: msg.requestId, facade: msg.facade }, work.kind === 'step' ? work.node : undefined);
    log.info('handed back by an instance without the version: handled here', { from: msg.from, topic: msg.topic });
    // Not awaited: a step may run for long, and the broadcast topic also wakes throttled callers.
    // If this process dies before it is done, recovery sends the work again.
    void this.handle(def, msg.topic, work).catch((err: unknown) => log.warn('handed-back work failed', { error: ensureError(err).message }));
  }

  /** The owner no longer renews its lease (see StepRunner). */
  private silent(saga: SagaSnapshot): boolean {
    return saga.owner !== undefined && (saga.leaseAgeMs ?? 0) > this.rt.silenceMs();
  }

  /**
   * Awaited (quick, and the sender has committed its record): one that can never apply goes to the
   * broadcast topic's dead-letter topic with its reason, as it would have from its own topic.
   */
  private async apply(work: EventWork | ReplyWork, msg: HandbackMessage): Promise<void> {
    const log = this.rt.sagaLog({ requestId: msg.requestId, facade: msg.facade }, work.kind === 'reply' ? work.step : undefined);
    log.info('handed back by an instance without the version: applied here', { from: msg.from, topic: msg.topic, kind: work.kind });
    try {
      if (work.kind === 'event') await this.events.send(work.requestId, work.event, work.payload, work.idempotencyKey);
      else await this.events.reply(work.requestId, work.step, work.error !== undefined ? { error: work.error } : { output: work.output ?? null }, work.visit);
    } catch (err) {
      if (err instanceof OrchestratorError && !err.retryable) throw new PoisonMessageError(`handed back from ${msg.topic}: ${err.code}: ${err.message}`);
      throw err;
    }
  }
}
