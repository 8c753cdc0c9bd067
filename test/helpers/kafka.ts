import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { silentLogger } from '../../src/engine/logger';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { ALL_TOPICS } from '../../topics/topics';
import { waitFor } from './wait';

/** The broker that scripts/test.sh started (or found): scripts/kafka.sh, 127.0.0.1:9092. */
export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/** Every topic prefix this test process handed out: their topics are deleted after the run (see below). */
const prefixes = new Set<string>();

/**
 * A fresh topic prefix and group per test, so tests never see each other's messages. Each prefix
 * costs the broker about 186 partitions (every topic of topics/, and the tests' own): they are
 * deleted once the run is over, or the local broker runs out of heap after a few runs.
 */
export function uniqueKafkaNames(): { topicPrefix: string; groupId: string } {
  const id = randomUUID().slice(0, 8);
  prefixes.add(`test-${id}.`);
  return { topicPrefix: `test-${id}.`, groupId: `test-${id}` };
}

/**
 * Deletes the topics under the given prefixes (default: every prefix handed out so far and not yet
 * deleted), and the consumer groups named after them; returns how many topics. Only this process's
 * own: other test runs may share the broker.
 */
export async function deleteTestTopics(of: readonly string[] = [...prefixes]): Promise<number> {
  if (of.length === 0) return 0;
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => of.some((p) => t.startsWith(p)));
    for (let i = 0; i < topics.length; i += 200) await admin.deleteTopics({ topics: topics.slice(i, i + 200), timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => of.some((p) => g.startsWith(p.slice(0, -1))));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined); // a group still in use is left to expire
    for (const p of of) prefixes.delete(p);
    return topics.length;
  } finally {
    await admin.disconnect();
  }
}

// A root-level hook (this module is loaded by the spec files, with mocha's globals): after every
// suite of the run has closed its transports and stopped its processes.
if (typeof after === 'function') {
  after('delete the Kafka topics the tests created', async function () {
    this.timeout(180_000);
    await deleteTestTopics();
  });
}

/** A KafkaTransport on the test broker with every topic of topics/, under the given prefix and group. */
export function transportFor(names: { topicPrefix: string; groupId: string }): Promise<KafkaTransport> {
  return KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: 'test', partitionsConsumedConcurrently: 4, connectTimeoutMs: 20_000, ...names }, ALL_TOPICS, silentLogger);
}

export function testKafka(): Kafka {
  return new Kafka({ clientId: 'test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
}

/** Reads everything on a topic from the beginning into an array, until stop() is called. */
export async function collect(topic: string): Promise<{ messages: KafkaMessage[]; stop: () => Promise<void> }> {
  const consumer: Consumer = testKafka().consumer({ groupId: `collect-${randomUUID()}`, sessionTimeout: 6_000 });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
  await consumer.run({ eachMessage: async ({ message }) => { messages.push(message); } });
  await waitFor(() => joined, 20_000, `collector on ${topic} to join its group`);
  return { messages, stop: () => consumer.disconnect() };
}
