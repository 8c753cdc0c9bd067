import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, MessageTooLargeError, PoisonMessageError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import { HEADERS, type Message, type MessageHandler } from '../engine/transport';

/** A reason quotes errors, which may quote the message: bounded, so that the copy stays about the original's size. */
const MAX_REASON = 2_000;

/** The copy of a message that goes to a dead-letter topic: same key, value and headers, plus why. */
export function deadLetterOf(message: Message, deadLetterTopic: string, reason: string): Message {
  return {
    topic: deadLetterTopic,
    key: message.key,
    value: message.value,
    headers: {
      ...message.headers,
      [HEADERS.deadLetterReason]: reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}…` : reason,
      [HEADERS.originalTopic]: message.topic,
    },
  };
}

/**
 * Publishes the dead letter; one the broker refuses as too large (an original at the limit, plus the
 * headers) goes without its value, saying so: a dead letter that can never be published would hold
 * its message, redelivered and failed, forever.
 */
async function publishDeadLetter(publish: (m: Message) => Promise<void>, letter: Message): Promise<void> {
  try {
    await publish(letter);
  } catch (err) {
    if (!(err instanceof MessageTooLargeError)) throw err;
    const reason = `${letter.headers[HEADERS.deadLetterReason]} (value of ${Buffer.byteLength(letter.value)} bytes left out: ${err.message})`;
    await publish({ ...letter, value: '', headers: { ...letter.headers, [HEADERS.deadLetterReason]: reason } });
  }
}

export interface DeliveryOptions {
  /** Attempts for a handler failure that is neither poison nor marked retryable. */
  attempts: number;
  backoffMs: number;
  /** True once the consumer gives its messages back (draining, or rejoining its group): a retryable failure is then given back, not committed, and fetched again. */
  closing(): boolean;
  deadLetterTopic?: string;
  publish(message: Message): Promise<void>;
  log: Logger;
  /** Told of each message dead-lettered, by kind of reason (the reason's text is unbounded). */
  deadLettered?(reason: 'poison' | 'retries_exhausted'): void;
}

const MAX_BACKOFF_MS = 5_000;

/**
 * Runs the handler for one message. A poison message goes to the dead-letter topic at once. A
 * retryable failure (the store or broker is down) is retried with capped backoff for as long as it
 * takes: the message waits rather than being lost. Any other failure is retried `attempts` times,
 * then dead-lettered. Throws only a retryable error while closing, so that the message is redelivered.
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
      if (!poison && (error as { retryable?: boolean }).retryable === true) {
        if (opts.closing()) throw error;
        if (attempt === 1 || attempt % 10 === 0) opts.log.warn('message handler failed (retryable): waiting and retrying', meta);
        await sleep(Math.min(MAX_BACKOFF_MS, opts.backoffMs * 2 ** Math.min(attempt - 1, 10)));
        continue;
      }
      if (!poison && attempt < opts.attempts) {
        opts.log.warn('message handler failed: retrying', meta);
        await sleep(opts.backoffMs * 2 ** (attempt - 1));
        continue;
      }
      const reason = poison ? error.message : `handler failed after ${attempt} attempts: ${error.message}`;
      opts.log.error('message dead-lettered', { ...meta, reason, deadLetterTopic: opts.deadLetterTopic });
      if (opts.deadLetterTopic) await publishDeadLetter((m) => opts.publish(m), deadLetterOf(message, opts.deadLetterTopic, reason));
      opts.deadLettered?.(poison ? 'poison' : 'retries_exhausted');
      return;
    }
  }
}
