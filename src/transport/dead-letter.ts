import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, PoisonMessageError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import { HEADERS, type Message, type MessageHandler } from '../engine/transport';

/** The copy of a message that goes to a dead-letter topic: same key, value and headers, plus why. */
export function deadLetterOf(message: Message, deadLetterTopic: string, reason: string): Message {
  return {
    topic: deadLetterTopic,
    key: message.key,
    value: message.value,
    headers: { ...message.headers, [HEADERS.deadLetterReason]: reason, [HEADERS.originalTopic]: message.topic },
  };
}

export interface DeliveryOptions {
  /** Attempts for a handler failure that is not a poison message (e.g. a store blip). */
  attempts: number;
  backoffMs: number;
  deadLetterTopic?: string;
  publish(message: Message): Promise<void>;
  log: Logger;
}

/**
 * Runs the handler for one message and never throws: a poison message goes to the dead-letter
 * topic at once; any other failure is retried with backoff, then dead-lettered. Nothing is dropped
 * and the consumer goes on.
 */
export async function deliverOrDeadLetter(message: Message, handler: MessageHandler, opts: DeliveryOptions): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await handler(message);
      return;
    } catch (err) {
      const error = ensureError(err);
      const poison = error instanceof PoisonMessageError || error.name === 'PoisonMessageError';
      const meta = { topic: message.topic, requestId: message.key, attempt, error: error.message };
      if (!poison && attempt < opts.attempts) {
        opts.log.warn('message handler failed: retrying', meta);
        await sleep(opts.backoffMs * 2 ** (attempt - 1));
        continue;
      }
      const reason = poison ? error.message : `handler failed after ${attempt} attempts: ${error.message}`;
      opts.log.error('message dead-lettered', { ...meta, reason, deadLetterTopic: opts.deadLetterTopic });
      if (opts.deadLetterTopic) await opts.publish(deadLetterOf(message, opts.deadLetterTopic, reason));
      return;
    }
  }
}
