import type { Logger } from '../engine/logger';
import type { TransportMetrics } from '../engine/metrics';
import type { Message, MessageHandler, Transport } from '../engine/transport';
import type { TopicSpec } from '../../topics/topics';
import { deliverOrDeadLetter } from './dead-letter';

/**
 * In-process transport: the embedded default and the unit tests' bus. Messages published before
 * anyone subscribes wait, as they would in a Kafka topic. Not durable: a crash loses what is queued.
 */
export class MemoryTransport implements Transport {
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly waiting = new Map<string, Message[]>();
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
    private readonly metrics?: Pick<TransportMetrics, 'deadLettered'>,
  ) {}

  async publish(message: Message): Promise<void> {
    if (this.closed) throw new Error('transport is closed');
    this.spec(message.topic);
    const copy: Message = { ...message, headers: { ...message.headers }, partition: 0, offset: String(this.nextOffset++) };
    const handler = this.handlers.get(message.topic);
    if (handler) this.deliver(copy, handler);
    else this.waiting.set(message.topic, (this.waiting.get(message.topic) ?? []).concat(copy));
  }

  /** One process: a broadcast subscription is an ordinary one. */
  async subscribe(topics: readonly string[], handler: MessageHandler): Promise<void> {
    for (const topic of topics) {
      this.spec(topic);
      this.handlers.set(topic, handler);
      for (const message of this.waiting.get(topic) ?? []) this.deliver(message, handler);
      this.waiting.delete(topic);
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
