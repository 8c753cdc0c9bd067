import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../src/engine/logger';
import type { SagaStore } from '../../src/engine/store';
import type { Message, Transport } from '../../src/engine/transport';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { MemorySagaStore } from '../../src/store/memory-store';
import type { TopicSpec } from '../../topics/topics';
import { collect, KAFKA_BROKERS, uniqueKafkaNames } from './kafka';
import { freshDatabase } from './postgres';

/** Where the engine suite runs: in-process, and on the real broker with the real Postgres. */
export interface Backend {
  name: string;
  store(leaseTtlMs: number): Promise<SagaStore>;
  transport(): Promise<Transport>;
  /** The messages on the dead-letter topic so far with this key. */
  deadLetters(transport: Transport, key: string): Promise<readonly Message[]>;
  /** How many times the transport runs a handler that fails for a non-retryable reason before dead-lettering. */
  handlerAttempts: number;
  /** After each test. */
  cleanup(): Promise<void>;
  /** After the suite. */
  close(): Promise<void>;
}

export const memoryBackendOf = (TOPICS: TopicSpec[]): Backend => ({
  name: 'in-process transport, memory store',
  store: async (leaseTtlMs) => new MemorySagaStore(leaseTtlMs),
  transport: async () => new MemoryTransport(TOPICS, silentLogger, { attempts: 2, backoffMs: 1 }),
  deadLetters: async (t, key) => (t as MemoryTransport).undelivered('dlq').filter((m) => m.key === key),
  handlerAttempts: 2,
  cleanup: async () => undefined,
  close: async () => undefined,
});

export const realBackendOf = (TOPICS: TopicSpec[]): Backend => {
  const closers: (() => Promise<void>)[] = [];
  const names = uniqueKafkaNames();
  // One reader of the dead-letter topic for the whole suite, from its beginning. The suite's tests
  // share their topics, and each test's consumer group reads them from the beginning: the earlier
  // tests' messages come again and are dead-lettered as unknown sagas. Tests tell theirs by key.
  let deadLetterReader: ReturnType<typeof collect> | undefined;
  return {
    name: 'Kafka transport, Postgres store',
    async store(leaseTtlMs) {
      const db = await freshDatabase();
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 5, leaseTtlMs, connectTimeoutMs: 2_000 }, silentLogger);
      closers.push(async () => { await store.close(); await db.drop(); });
      return store;
    },
    async transport() {
      // A fresh group per test, so that no test gets another's messages; topics are shared under one prefix.
      const transport = await KafkaTransport.create({
        brokers: KAFKA_BROKERS, clientId: 'engine-test', groupId: `${names.groupId}-${randomUUID()}`, topicPrefix: names.topicPrefix,
        partitionsConsumedConcurrently: 8, connectTimeoutMs: 20_000,
      }, TOPICS, silentLogger);
      closers.push(() => transport.close());
      return transport;
    },
    async deadLetters(_transport, key) {
      deadLetterReader ??= collect(`${names.topicPrefix}dlq`);
      const { messages } = await deadLetterReader;
      return messages.filter((m) => m.key?.toString() === key).map((m) => ({
        topic: 'dlq',
        key,
        value: m.value?.toString() ?? '',
        headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])),
      }));
    },
    handlerAttempts: 3, // KafkaTransport's own
    async cleanup() {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    },
    async close() {
      const reader = deadLetterReader;
      deadLetterReader = undefined;
      if (reader) await (await reader).stop();
    },
  };
};

