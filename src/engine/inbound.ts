import { randomBytes } from 'node:crypto';
import { MissingVersionError, OrchestratorError, PoisonMessageError } from './errors';
import type { Events } from './events';
import type { Handback } from './handback';
import { decodeEvent, decodeReply } from './messages';
import type { Message } from './transport';

/**
 * Events and step replies from their topics: SendEvent's and CompleteStep / FailStep's twins on
 * Kafka. Nobody waits for an answer there: what can never apply is dead-lettered with its reason,
 * and what is for a saga of a version this process lacks goes to an instance that has it.
 */
export class Inbound {
  constructor(private readonly events: Events, private readonly handback: Handback) {}

  async event(message: Message): Promise<void> {
    const e = decodeEvent(message);
    await this.events.send(e.requestId, e.event, e.payload, e.idempotencyKey).catch((err: unknown) => {
      if (!(err instanceof MissingVersionError)) return poisonUnlessRetryable(err);
      // Keyed either way: each instance that applies it must count it once (a transport gives records a key; else one here).
      const idempotencyKey = e.idempotencyKey ?? `handback:${randomBytes(8).toString('hex')}`;
      return this.handback.handBackAnswer(message.topic, { kind: 'event', requestId: e.requestId, event: e.event, payload: e.payload, idempotencyKey });
    });
  }

  async reply(message: Message): Promise<void> {
    const r = decodeReply(message);
    await this.events.reply(r.requestId, r.step, r.error !== undefined ? { error: r.error } : { output: r.output ?? null }, r.visit).catch((err: unknown) => {
      if (!(err instanceof MissingVersionError)) return poisonUnlessRetryable(err);
      return this.handback.handBackAnswer(message.topic, { kind: 'reply', ...r });
    });
  }
}

/** Over Kafka nobody can be answered: an event or reply that can never apply is dead-lettered with its reason. */
function poisonUnlessRetryable(err: unknown): never {
  if (err instanceof OrchestratorError && !err.retryable) throw new PoisonMessageError(`${err.code}: ${err.message}`);
  throw err;
}
