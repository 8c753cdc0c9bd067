import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type IHeaders, type KafkaMessage, type LogEntry, type Producer } from 'kafkajs';
import { MessageTooLargeError, OrchestratorError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import type { TransportMetrics } from '../engine/metrics';
import type { Message, MessageHandler, Transport } from '../engine/transport';
import type { TopicSpec } from '../../topics/topics';
import { Batcher } from '../lib/batcher';
import { deliverOrDeadLetter } from './dead-letter';

export interface KafkaTransportConfig {
  brokers: string[];
  clientId: string;
  /** Shared by every orchestrator instance, so that pods split the partitions between them. */
  groupId: string;
  /** Prepended to every logical topic name (one cluster, several environments or test runs). */
  topicPrefix: string;
  /** Partitions handled at once by one instance. */
  partitionsConsumedConcurrently: number;
  /** Messages (of different request ids) handled at once within one partition's batch; default 32. */
  messagesInFlight?: number;
  /** How long start-up and subscribe wait for the broker before giving up. */
  connectTimeoutMs: number;
  /**
   * How long the group waits for a member to rejoin in a rebalance (kafkajs default 60 s): it must
   * exceed the longest a handler holds a message (a step attempt, bounded by stepTimeoutMs).
   */
  rebalanceTimeoutMs?: number;
  /**
   * The largest message the broker takes (its message.max.bytes, default 1048588 bytes, or a topic's
   * max.message.bytes): a larger one is refused here without a round trip, and a produce request
   * never carries more than this in all (the broker refuses a whole record batch over it). Default 1,000,000.
   */
  maxMessageBytes?: number;
  /**
   * How long the broker waits for a silent member before handing its partitions on (default 10 s):
   * after a kill -9, how long the restarted process's consumers wait before they are in.
   */
  sessionTimeoutMs?: number;
  /** Replicas of each topic created at start-up (config transport.kafka.replicationFactor); default 1. */
  replicationFactor?: number;
  /** Where publish latency, consumer lag and dead letters are reported. */
  metrics?: TransportMetrics;
}

/** The consumer's own liveness: heartbeats go out every second whatever its handlers are doing. */
const HEARTBEAT_MS = 1_000;
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** Under the broker's default message.max.bytes (1048588), with room for the record batch's own overhead. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_000_000;
/** Broker answers that refuse what was sent, not the moment it was sent: sending it again fails again. */
const REFUSED = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);
/** kafkajs errors that mean this member must rejoin its group: it may no longer own its partitions. */
const REJOIN = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/**
 * Kafka via kafkajs. Creates the declared topics that are missing at start-up, keys messages by
 * request id, and commits a message's offset once its handler is done (or it is dead-lettered).
 */
export class KafkaTransport implements Transport {
  private readonly consumers: Consumer[] = [];
  /** Set once draining starts: consumers stop taking messages, publishes still go out. */
  private draining?: Promise<void>;
  private closing?: Promise<void>;
  private closed = false;
  /** Why a consumer stopped and will not restart (kafkajs CRASH without restart), if one did. */
  private crashed?: string;
  private readonly sends: Batcher<Message, void>;

  private constructor(
    private readonly kafka: Kafka,
    private readonly producer: Producer,
    private readonly config: KafkaTransportConfig,
    private readonly topics: readonly TopicSpec[],
    private readonly log: Logger,
  ) {
    this.sends = new Batcher((messages) => this.sendIsolated(messages), {
      maxBatch: 500, maxInFlight: 2, weight: sizeOf, maxWeight: this.maxMessageBytes,
    });
  }

  private get maxMessageBytes(): number {
    return this.config.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  static async create(config: KafkaTransportConfig, topics: readonly TopicSpec[], log: Logger): Promise<KafkaTransport> {
    const kafka = new Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: 3_000,
      retry: { retries: 5, initialRetryTime: 200 },
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => kafkaLog(log, entry),
    });
    const admin = kafka.admin();
    try {
      await withTimeout(admin.connect(), config.connectTimeoutMs, `Kafka brokers ${config.brokers.join(',')} unreachable`);
      await ensureTopics(admin, topics.map((t) => ({ ...t, name: config.topicPrefix + t.name })), config.replicationFactor ?? 1, log, config.connectTimeoutMs);
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await withTimeout(producer.connect(), config.connectTimeoutMs, 'Kafka producer could not connect');
    return new KafkaTransport(kafka, producer, config, topics, log);
  }

  /** Resolves once the broker has the message (acks from all in-sync replicas). */
  async publish(message: Message): Promise<void> {
    if (this.closed) throw new OrchestratorError('UNAVAILABLE', 'transport is closed', true);
    this.spec(message.topic);
    const bytes = sizeOf(message);
    if (bytes > this.maxMessageBytes) {
      throw new MessageTooLargeError(message.topic, `${bytes} bytes, over transport.kafka.maxMessageBytes (${this.maxMessageBytes})`);
    }
    const metrics = this.config.metrics;
    if (!metrics) return this.sends.submit(message);
    const started = process.hrtime.bigint();
    let ok = false;
    try {
      await this.sends.submit(message);
      ok = true;
    } finally {
      metrics.published(message.topic, Number(process.hrtime.bigint() - started) / 1e9, ok);
    }
  }

  /**
   * A batch the broker refuses for what one of its messages is (too large for a topic with a lower
   * limit, say) is sent again message by message, so that only that message fails, for good; the
   * others go out (some of them twice: the partitions that took them before the refusal keep them,
   * and every consumer dedupes). A broker that is down fails them all, to be retried.
   */
  private async sendIsolated(messages: Message[]): Promise<Array<void | Error>> {
    try {
      return await this.sendBatch(messages);
    } catch (err) {
      if (!(err instanceof MessageTooLargeError) || messages.length === 1) throw err;
      return Promise.all(messages.map((m) => this.sendBatch([m]).then(() => undefined, (e: unknown) => e as Error)));
    }
  }

  /** One produce request for every message published while the previous request was in flight. */
  private async sendBatch(messages: Message[]): Promise<void[]> {
    const byTopic = groupBy(messages, (m) => m.topic);
    try {
      await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, ms]) => ({
          topic: this.config.topicPrefix + topic,
          messages: ms.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
        })),
      });
    } catch (err) {
      const topics = [...byTopic.keys()].join(', ');
      const type = (err as { type?: string }).type ?? '';
      if (REFUSED.has(type)) throw new MessageTooLargeError(topics, `${type}: ${(err as Error).message}`);
      throw new OrchestratorError('UNAVAILABLE', `Kafka publish to ${topics} failed: ${(err as Error).message}`, true, { cause: err });
    }
    return messages.map(() => undefined);
  }

  /**
   * Shared subscriptions get a consumer, and a consumer group, per topic: kafkajs fetches again only
   * once every batch of the previous fetch is handled, so one consumer for all topics would hold
   * each step's messages behind the slowest batch of any other step.
   */
  async subscribe(topics: readonly string[], handler: MessageHandler, opts: { broadcast?: boolean } = {}): Promise<void> {
    for (const topic of topics) this.spec(topic);
    if (opts.broadcast) {
      // A group of its own, reading from now on: every instance sees every message.
      await this.consume(`${this.config.groupId}.broadcast.${randomUUID()}`, topics, handler, false);
      return;
    }
    await Promise.all(topics.map((topic) => this.consume(`${this.config.groupId}.${topic}`, [topic], handler, true)));
  }

  private async consume(groupId: string, topics: readonly string[], handler: MessageHandler, fromBeginning: boolean): Promise<void> {
    // An idle fetch waits at most maxWaitTimeInMs on the broker, and stopping waits for that fetch.
    const consumer = this.kafka.consumer({
      groupId, sessionTimeout: this.config.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS, heartbeatInterval: HEARTBEAT_MS, rebalanceTimeout: this.config.rebalanceTimeoutMs,
      maxWaitTimeInMs: 1_000, allowAutoTopicCreation: false,
    });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: topics.map((t) => this.config.topicPrefix + t), fromBeginning });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.crashed = `${groupId}: ${payload.error.message}`;
    });
    await consumer.run({
      partitionsConsumedConcurrently: this.config.partitionsConsumedConcurrently,
      // A batch is handled concurrently across request ids and in order within one (one saga's
      // messages never overtake each other); the offset advances only over messages fully handled.
      eachBatchAutoResolve: false,
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs builds these as closures; its docs destructure them
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const topic = batch.topic.slice(this.config.topicPrefix.length);
        const done = new Set<string>();
        // The broker's end of the partition as of this fetch, minus what this batch got through.
        const lag = (next: string | undefined) => {
          if (next !== undefined) this.config.metrics?.consumerLag(topic, batch.partition, Math.max(0, Number(batch.highWatermark) - Number(next)));
        };
        lag(batch.messages[0]?.offset);
        const byKey = groupBy(batch.messages, (m) => m.key?.toString() ?? '');
        // kafkajs heartbeats only between batches: a step slower than the session timeout would get
        // this member evicted and its message handled again elsewhere while it still runs here.
        let rejoin = false;
        const beat = setInterval(() => {
          heartbeat().catch((err: { type?: string; message?: string }) => {
            if (REJOIN.has(err.type ?? '')) rejoin = true;
            else this.log.debug('consumer heartbeat failed', { groupId, error: err.message });
          });
        }, HEARTBEAT_MS);
        // After a rebalance starts, nothing new is taken, and retryable failures give their message back.
        const yielding = () => rejoin || this.draining !== undefined;
        try {
          await mapLimit([...byKey.values()], this.config.messagesInFlight ?? 32, async (messages) => {
            for (const message of messages) {
              if (!isRunning() || isStale() || rejoin) return;
              try {
                await this.deliver(topic, batch.partition, message, handler, yielding);
              } catch {
                return; // given back: not committed, fetched again by whoever owns the partition
              }
              done.add(message.offset);
            }
          });
        } finally {
          clearInterval(beat);
        }
        let next = batch.messages[0]?.offset;
        for (const m of batch.messages) {
          if (!done.has(m.offset)) break;
          resolveOffset(m.offset);
          next = String(Number(m.offset) + 1);
        }
        lag(next);
      },
    });
    await withTimeout(joined, this.config.connectTimeoutMs, `consumer group ${groupId} did not join`);
  }

  private async deliver(topic: string, partition: number, message: KafkaMessage, handler: MessageHandler, yielding: () => boolean): Promise<void> {
    const inbound: Message = {
      topic,
      key: message.key?.toString() ?? '',
      value: message.value?.toString() ?? '',
      headers: headersToStrings(message.headers),
      partition,
      offset: message.offset,
    };
    await deliverOrDeadLetter(inbound, handler, {
      attempts: 3,
      backoffMs: 200,
      closing: yielding,
      deadLetterTopic: this.spec(inbound.topic).deadLetter,
      publish: (m) => this.publish(m),
      log: this.log,
      deadLettered: (reason) => this.config.metrics?.deadLettered(topic, reason),
    });
  }

  /** The cluster answers within 2 s, and no consumer has crashed for good. */
  async ping(): Promise<void> {
    if (this.closed) throw new Error('transport is closed');
    if (this.crashed) throw new Error(`a Kafka consumer stopped: ${this.crashed}`);
    const admin = this.kafka.admin();
    try {
      await withTimeout(admin.connect().then(() => admin.describeCluster()), 2_000, `Kafka brokers ${this.config.brokers.join(',')} unreachable`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Consumers finish the messages in hand and leave their groups; what those publish still goes out. */
  async drain(): Promise<void> {
    this.draining ??= Promise.all(this.consumers.map((consumer) =>
      consumer.disconnect().catch((err) => this.log.warn('consumer disconnect failed', { error: String(err) })))).then(() => undefined);
    return this.draining;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.drain();
      this.closed = true;
      await this.sends.drain();
      await this.producer.disconnect().catch((err) => this.log.warn('producer disconnect failed', { error: String(err) }));
    })();
    return this.closing;
  }

  private spec(topic: string): TopicSpec {
    const spec = this.topics.find((t) => t.name === topic);
    if (!spec) throw new Error(`topic ${topic} is not declared in topics/`);
    return spec;
  }
}

async function ensureTopics(admin: Admin, topics: TopicSpec[], replicationFactor: number, log: Logger, timeoutMs: number): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.name));
  if (missing.length > 0) {
    // kafkajs' own waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker
    // answers until the new topic's metadata has propagated: we wait for the leaders ourselves.
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((t) => ({ topic: t.name, numPartitions: t.partitions, replicationFactor })),
    }).catch((err: unknown) => {
      // e.g. INVALID_REPLICATION_FACTOR ("Replication-factor is invalid"): more replicas than brokers.
      const causes = new Set(((err as { errors?: Error[] }).errors ?? [err as Error]).map((e) => e.message));
      throw new Error(`cannot create Kafka topics with transport.kafka.replicationFactor ${replicationFactor}: ${[...causes].join('; ')}`, { cause: err });
    });
    log.info('created Kafka topics', { topics: missing.map((t) => t.name), replicationFactor });
  }
  await waitForLeaders(admin, topics.map((t) => t.name), timeoutMs);
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      if (meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new OrchestratorError('UNAVAILABLE', `Kafka topics have no leader after ${timeoutMs} ms`, true);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A message's bytes on the wire, near enough: key, value, header names and values (UTF-8). */
function sizeOf(message: Message): number {
  let bytes = Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const [k, v] of Object.entries(message.headers)) bytes += k.length + Buffer.byteLength(v);
  return bytes;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
  }
  return out;
}

function kafkaLog(log: Logger, { level, log: entry }: LogEntry): void {
  const { message, ...meta } = entry;
  const line = `kafkajs: ${message}`;
  if (level === logLevel.ERROR) log.error(line, meta);
  else if (level === logLevel.WARN) log.warn(line, meta);
  else log.debug(line, meta);
}

/** Items by key, each group in the items' order. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const same = groups.get(k);
    if (same) same.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Runs fn over items, at most `limit` at a time. */
async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OrchestratorError('UNAVAILABLE', `${message} (after ${ms} ms)`, true)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
