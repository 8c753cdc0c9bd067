/** A message as the engine sees it; the transport maps it to Kafka or to an in-process queue. */
export interface Message {
  /** Logical topic name, as declared in topics/. */
  readonly topic: string;
  /** The saga's request id, so that one saga's messages stay in order on one partition. */
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Where a consumed message sits in its topic (set by the transport on delivery, absent on
   * publish): the same for every delivery of one record, so that a redelivery can be told from a
   * new record with the same content (events without an idempotency key are keyed on it).
   */
  readonly partition?: number;
  readonly offset?: string;
}

export type MessageHandler = (message: Message) => Promise<void>;

/**
 * Moves messages between orchestrator instances. A handler that throws PoisonMessageError gets
 * its message moved to the topic's dead-letter topic; the consumer goes on either way.
 */
export interface Transport {
  publish(message: Message): Promise<void>;
  /**
   * Resolves once the subscription is live (for Kafka: the consumer joined its group). Shared: the
   * instances split the messages. Broadcast: every instance gets every message published from now on.
   */
  subscribe(topics: readonly string[], handler: MessageHandler, opts?: { broadcast?: boolean }): Promise<void>;
  /**
   * Stops consuming: the messages in hand finish, and what they publish still goes out. Safe to call
   * twice. The first step of a shutdown; leases are still renewed meanwhile.
   */
  drain(): Promise<void>;
  /** drain(), then refuses publishes and disconnects. Safe to call twice. */
  close(): Promise<void>;
  /** Resolves when the broker answers and consumers run (a readiness probe); throws saying what is wrong otherwise. */
  ping(): Promise<void>;
}

export const HEADERS = {
  requestId: 'x-request-id',
  facade: 'x-facade',
  node: 'x-node',
  attempt: 'x-attempt',
  deadLetterReason: 'x-dead-letter-reason',
  originalTopic: 'x-original-topic',
} as const;
