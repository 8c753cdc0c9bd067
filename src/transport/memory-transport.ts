import type { Logger } from '../engine/logger';
import type { TransportMetrics } from '../engine/metrics';
import type { Message, MessageHandler, Transport } from '../engine/transport';
import type { TopicSpec } from '../../topics/topics';
import { deliverOrDeadLetter } from './dead-letter';

/** How many dead letters the in-process transport keeps, and for how long (oldest dropped first). */
export interface DeadLetterBounds {
  max: number;
  maxAgeMs: number;
  /** The clock the ages are read from (tests age letters without waiting). */
  now?: () => number;
}

export const DEFAULT_DEAD_LETTER_BOUNDS: DeadLetterBounds = { max: 1_000, maxAgeMs: 7 * 86_400_000 };

/**
 * In-process transport: the embedded default and the unit tests' bus. Messages published before
 * anyone subscribes wait, as they would in a Kafka topic. Not durable: a crash loses what is queued.
 * Dead letters nobody consumes are kept for a look (`undelivered`), within bounds: a process that
 * runs for months must not keep every one.
 */
export class MemoryTransport implements Transport {
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly waiting = new Map<string, Message[]>();
  /** When each kept dead letter arrived, in the order of `waiting`'s queue for its topic. */
  private readonly keptAt = new Map<string, number[]>();
  private readonly deadLetterTopics: ReadonlySet<string>;
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private closing = false;
  /**
   * The next record's offset (one sequence for all topics, partition 0). It starts at this
   * transport's start time in microseconds: a restarted process (whose store may be Postgres and
   * remember the keys derived from offsets) never hands out an offset again.
   */
  private nextOffset = Date.now() * 1_000;

  constructor(
    private readonly topics: readonly TopicSpec[],
    private readonly log: Logger,
    private readonly retry = { attempts: 3, backoffMs: 100 },
    private readonly metrics?: Pick<TransportMetrics, 'deadLettered' | 'deadLettersDropped'>,
    private readonly deadLetterBounds: DeadLetterBounds = DEFAULT_DEAD_LETTER_BOUNDS,
  ) {
    this.deadLetterTopics = new Set(topics.flatMap((t) => (t.deadLetter ? [t.deadLetter] : [])));
  }

  async publish(message: Message): Promise<void> {
    if (this.closed) throw new Error('transport is closed');
    this.spec(message.topic);
    const copy: Message = { ...message, headers: { ...message.headers }, partition: 0, offset: String(this.nextOffset++) };
    const handler = this.handlers.get(message.topic);
    if (handler) {
      this.deliver(copy, handler);
      return;
    }
    const queue = this.waiting.get(message.topic) ?? [];
    queue.push(copy);
    this.waiting.set(message.topic, queue);
    if (this.deadLetterTopics.has(message.topic)) this.bound(message.topic, queue);
  }

  /** Drops the oldest dead letters beyond the cap or older than the age bound, saying how many. */
  private bound(topic: string, queue: Message[]): void {
    const at = this.keptAt.get(topic) ?? [];
    const now = (this.deadLetterBounds.now ?? Date.now)();
    at.push(now);
    this.keptAt.set(topic, at);
    let drop = Math.max(0, queue.length - this.deadLetterBounds.max);
    while (drop < at.length && now - at[drop] > this.deadLetterBounds.maxAgeMs) drop++;
    if (drop === 0) return;
    queue.splice(0, drop);
    at.splice(0, drop);
    this.metrics?.deadLettersDropped?.(topic, drop);
    this.log.warn('dead letters dropped: the in-process transport keeps the newest only', {
      topic, dropped: drop, kept: queue.length, max: this.deadLetterBounds.max, maxAgeMs: this.deadLetterBounds.maxAgeMs,
    });
  }

  /** One process: a broadcast subscription is an ordinary one. */
  async subscribe(topics: readonly string[], handler: MessageHandler): Promise<void> {
    for (const topic of topics) {
      this.spec(topic);
      this.handlers.set(topic, handler);
      for (const message of this.waiting.get(topic) ?? []) this.deliver(message, handler);
      this.waiting.delete(topic);
      this.keptAt.delete(topic);
    }
  }

  /** Messages on a topic nobody consumes yet, e.g. a dead-letter topic. */
  undelivered(topic: string): readonly Message[] {
    return this.waiting.get(topic) ?? [];
  }

  /** Lets the messages in hand finish, and whatever they publish in turn (one process: nobody else would). */
  async drain(): Promise<void> {
    this.closing = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('transport is closed');
  }

  async close(): Promise<void> {
    await this.drain();
    this.handlers.clear();
    this.closed = true;
  }

  private deliver(message: Message, handler: MessageHandler): void {
    const run: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => deliverOrDeadLetter(message, handler, {
        ...this.retry,
        closing: () => this.closing,
        deadLetterTopic: this.spec(message.topic).deadLetter,
        publish: (m) => this.publish(m),
        log: this.log,
        deadLettered: (reason) => this.metrics?.deadLettered(message.topic, reason),
      }))
      .catch((err) => {
        this.log.error('message dropped at shutdown (in-process transport)', { topic: message.topic, requestId: message.key, error: String(err) });
      })
      .finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  private spec(topic: string): TopicSpec {
    const spec = this.topics.find((t) => t.name === topic);
    if (!spec) throw new Error(`topic ${topic} is not declared in topics/`);
    return spec;
  }
}
