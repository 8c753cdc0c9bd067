import { ensureError, PoisonMessageError } from './errors';
import type { FacadeDefinition } from './facade';
import { encodeMessage, type HandbackMessage, type RollbackMessage, type StepMessage } from './messages';
import type { SagaRuntime } from './runtime';

type Work = StepMessage | RollbackMessage;

/**
 * A mixed deployment (a rolling update: some instances have a facade's new version, some not yet)
 * shares one consumer group, so a step or rollback message of the new version may reach an
 * instance that lacks it. That instance cannot run it and must not drop it: it broadcasts it
 * back, and the saga's owner, which has the version (it published the message), handles it in
 * process. Should the owner die meanwhile, its lease lapses and an instance that has the version
 * takes the saga over and sends the work again.
 */
export class Handback {
  constructor(
    private readonly rt: SagaRuntime,
    /** Handles a step or rollback message as if it had come on its topic. */
    private readonly handle: (def: FacadeDefinition, topic: string, msg: Work) => Promise<void>,
  ) {}

  /** On a node or rollback topic: a message of a version this process does not have. */
  async handBack(topic: string, msg: Work): Promise<void> {
    const saga = await this.rt.store.get(msg.requestId);
    if (!saga) throw new PoisonMessageError(`unknown facade ${msg.facade} version ${msg.version}, and no saga ${msg.requestId}`);
    if (saga.facade !== msg.facade || saga.version !== msg.version) {
      throw new PoisonMessageError(`saga ${msg.requestId} is ${saga.facade} version ${saga.version}, not ${msg.facade} version ${msg.version}`);
    }
    const back: HandbackMessage = { kind: 'handback', requestId: msg.requestId, facade: msg.facade, version: msg.version, topic, message: msg, from: this.rt.owner };
    await this.rt.transport.publish(encodeMessage(this.rt.outcomeTopic, back));
    this.rt.log.info('message of a facade version this instance does not have: handed back to the saga\'s owner',
      { requestId: msg.requestId, facade: msg.facade, version: msg.version, kind: msg.kind, topic, owner: saga.owner });
  }

  /** On the broadcast topic: the owner takes the work; every other instance ignores it. */
  async takeBack(msg: HandbackMessage): Promise<void> {
    const def = this.rt.registry.find(msg.facade, msg.version);
    if (!def) return;
    const saga = await this.rt.store.get(msg.requestId);
    if (saga?.owner !== this.rt.owner) return;
    const log = this.rt.sagaLog({ requestId: msg.requestId, facade: msg.facade }, msg.message.kind === 'step' ? msg.message.node : undefined);
    log.info('handed back by an instance without the version: handled here', { from: msg.from, topic: msg.topic });
    // Not awaited: a step may run for long, and the broadcast topic also wakes throttled callers.
    // If this process dies before it is done, recovery sends the work again.
    void this.handle(def, msg.topic, msg.message).catch((err: unknown) => log.warn('handed-back work failed', { error: ensureError(err).message }));
  }
}
