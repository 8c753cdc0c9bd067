import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { silentLogger } from '../../src/engine/logger';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { ALL_TOPICS } from '../../topics/topics';
import { waitFor } from './wait';

/** The broker that scripts/test.sh started (or found): scripts/kafka.sh, 127.0.0.1:9092. */
export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

/** A fresh topic prefix and group per test, so tests never see each other's messages. */
export function uniqueKafkaNames(): { topicPrefix: string; groupId: string } {
  const id = randomUUID().slice(0, 8);
  return { topicPrefix: `test-${id}.`, groupId: `test-${id}` };
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
