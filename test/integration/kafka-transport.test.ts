import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load';
import { PoisonMessageError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import type { Message } from '../../src/engine/transport';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { collect, KAFKA_BROKERS, testKafka, transportFor, uniqueKafkaNames } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

describe('KafkaTransport against the real broker', function () {
  this.timeout(60_000);
  const open: KafkaTransport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('creates every topic declared in topics/ with its partitions, under the prefix', async () => {
    const names = uniqueKafkaNames();
    open.push(await transportFor(names));
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: ALL_TOPICS.map((t) => names.topicPrefix + t.name) });
      expect(topics.map((t) => [t.name, t.partitions.length]).sort()).to.deep.equal(
        ALL_TOPICS.map((t) => [names.topicPrefix + t.name, t.partitions]).sort(),
      );
    } finally {
      await admin.disconnect();
    }
    // A second start finds them and creates nothing new.
    open.push(await transportFor(names));
  });

  it('creates the topics with transport.kafka.replicationFactor, and names the option when the cluster has too few brokers', async () => {
    const names = uniqueKafkaNames();
    const dir = mkdtempSync(path.join(tmpdir(), 'och-kafka-'));
    writeFileSync(path.join(dir, 'app.yaml'), [
      'transport:', '  kafka:', `    brokers: [${KAFKA_BROKERS.join(', ')}]`, `    topicPrefix: "${names.topicPrefix}"`, `    groupId: ${names.groupId}`, '    replicationFactor: 1', '',
    ].join('\n'));
    const file = path.join(dir, 'app.yaml');
    const admin = testKafka().admin();
    await admin.connect();
    try {
      // As app.ts does: the loaded transport.kafka section is the transport's config.
      open.push(await KafkaTransport.create(loadConfig(file, {}).transport.kafka, ALL_TOPICS, silentLogger));
      const { topics } = await admin.fetchTopicMetadata({ topics: ALL_TOPICS.map((t) => names.topicPrefix + t.name) });
      expect(topics).to.have.length(ALL_TOPICS.length);
      for (const t of topics) expect(t.partitions.map((p) => p.replicas.length), t.name).to.deep.equal(t.partitions.map(() => 1));

      // The test broker is a single node: two replicas cannot be placed, and start-up says which option asked for them.
      const other = uniqueKafkaNames();
      const config = loadConfig(file, { OCH_TOPIC_PREFIX: other.topicPrefix, OCH_KAFKA_REPLICATION_FACTOR: '2' }).transport.kafka;
      expect(config.replicationFactor).to.equal(2);
      const error = await KafkaTransport.create(config, ALL_TOPICS, silentLogger).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.match(/^cannot create Kafka topics with transport\.kafka\.replicationFactor 2: .*[Rr]eplication/);
      expect((await admin.listTopics()).filter((t) => t.startsWith(other.topicPrefix))).to.deep.equal([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('delivers key, value and headers to the subscriber', async () => {
    const names = uniqueKafkaNames();
    const transport = await transportFor(names);
    open.push(transport);
    const got: Message[] = [];
    await transport.subscribe([TOPICS.bookingAsyncCreateOrder.name], async (m) => { got.push(m); });
    await transport.publish({ topic: TOPICS.bookingAsyncCreateOrder.name, key: 'r1', value: '{"x":1}', headers: { 'x-request-id': 'r1' } });
    const m = await waitFor(() => got[0], 20_000, 'delivery');
    // Where the record sits: what keys an event without an idempotency key (record:<topic>/<partition>/<offset>).
    expect(m).to.deep.include({ topic: TOPICS.bookingAsyncCreateOrder.name, key: 'r1', value: '{"x":1}', headers: { 'x-request-id': 'r1' } });
    expect(m.offset).to.match(/^\d+$/);
    expect(m.partition).to.be.a('number').within(0, TOPICS.bookingAsyncCreateOrder.partitions - 1);
  });

  it('moves a poison message to the dead-letter topic with the reason, and goes on consuming', async () => {
    const names = uniqueKafkaNames();
    const transport = await transportFor(names);
    open.push(transport);
    const dead = await collect(names.topicPrefix + TOPICS.deadLetter.name);
    const ok: string[] = [];
    await transport.subscribe([TOPICS.bookingAsyncRollback.name], async (m) => {
      if (m.value === 'garbage') throw new PoisonMessageError('not JSON');
      ok.push(m.key);
    });
    await transport.publish({ topic: TOPICS.bookingAsyncRollback.name, key: 'k1', value: 'garbage', headers: {} });
    await transport.publish({ topic: TOPICS.bookingAsyncRollback.name, key: 'k1', value: 'fine', headers: {} });
    await waitFor(() => ok.includes('k1'), 20_000, 'the message after the poison one');
    const letter = await waitFor(() => dead.messages[0], 20_000, 'dead letter');
    await dead.stop();
    expect(letter.value!.toString()).to.equal('garbage');
    expect(letter.key!.toString()).to.equal('k1');
    expect(letter.headers!['x-dead-letter-reason']!.toString()).to.equal('not JSON');
    expect(letter.headers!['x-original-topic']!.toString()).to.equal(TOPICS.bookingAsyncRollback.name);
  });

  it('refuses to publish to a topic that is not declared', async () => {
    const transport = await transportFor(uniqueKafkaNames());
    open.push(transport);
    let error: Error | undefined;
    await transport.publish({ topic: 'undeclared', key: 'k', value: 'v', headers: {} }).catch((e: Error) => { error = e; });
    expect(error?.message).to.equal('topic undeclared is not declared in topics/');
  });

  it('fails start-up with UNAVAILABLE when no broker answers', async () => {
    let error: (Error & { code?: string }) | undefined;
    await KafkaTransport.create({ brokers: ['127.0.0.1:1'], clientId: 't', groupId: 'g', topicPrefix: '', partitionsConsumedConcurrently: 1, connectTimeoutMs: 2_000 }, ALL_TOPICS, silentLogger)
      .catch((e: Error & { code?: string }) => { error = e; });
    expect(error?.code).to.equal('UNAVAILABLE');
  });
});
