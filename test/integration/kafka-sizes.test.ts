import { expect } from 'chai';
import { silentLogger } from '../../src/engine/logger';
import type { Message } from '../../src/engine/transport';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { collect, KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

const KB = 1024;
const topic = TOPICS.bookingAsyncCreateOrder.name;
const message = (key: string, bytes: number): Message => ({ topic, key, value: 'x'.repeat(bytes), headers: {} });

/**
 * Messages near and over the broker's size limit (message.max.bytes, 1 MB by default): one too
 * large fails alone and for good (not retryable, so nobody publishes it again and again), and the
 * messages that share its produce request, or a partition's record batch, go out.
 */
describe('KafkaTransport: message sizes against the real broker', function () {
  this.timeout(60_000);
  const open: KafkaTransport[] = [];
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });

  async function transport(maxMessageBytes?: number) {
    const names = uniqueKafkaNames();
    const t = await KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: 'sizes', partitionsConsumedConcurrently: 1, connectTimeoutMs: 20_000, maxMessageBytes, ...names }, ALL_TOPICS, silentLogger);
    open.push(t);
    const received = await collect(names.topicPrefix + topic);
    stops.push(received.stop);
    return { t, received };
  }

  const outcomes = (results: PromiseSettledResult<void>[]) =>
    results.map((r) => (r.status === 'fulfilled' ? 'ok' : `${(r.reason as Error).name} retryable=${String((r.reason as { retryable?: boolean }).retryable)}`));

  it('sends many 300 KB messages of one saga at once: no produce request carries more than the broker takes', async () => {
    const { t, received } = await transport();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => t.publish(message('one-saga', 300 * KB))));
    expect(outcomes(results)).to.deep.equal(Array(8).fill('ok'));
    await waitFor(() => received.messages.length >= 8, 30_000, 'the 8 messages');
  });

  it('refuses a message over transport.kafka.maxMessageBytes at once, for good; those published with it go out', async () => {
    const { t, received } = await transport();
    const results = await Promise.allSettled([t.publish(message('a', KB)), t.publish(message('b', 1_100 * KB)), t.publish(message('c', KB)), t.publish(message('d', KB))]);
    expect(outcomes(results)).to.deep.equal(['ok', 'MessageTooLargeError retryable=false', 'ok', 'ok']);
    expect((results[1] as PromiseRejectedResult).reason).to.have.property('message').that.matches(/refused as too large: 1126401 bytes, over transport\.kafka\.maxMessageBytes \(1000000\)/);
    await waitFor(() => received.messages.length >= 3, 30_000, 'the 3 small messages');
  });

  it('a message the broker itself refuses (its limit under maxMessageBytes) fails alone, for good; its batch-mates go out', async () => {
    const { t, received } = await transport(5_000_000);
    // Two in flight first, so that the rest share one produce request.
    const results = await Promise.allSettled([
      t.publish(message('a', KB)), t.publish(message('b', KB)),
      t.publish(message('c', KB)), t.publish(message('d', 1_100 * KB)), t.publish(message('e', KB)),
    ]);
    expect(outcomes(results)).to.deep.equal(['ok', 'ok', 'ok', 'MessageTooLargeError retryable=false', 'ok']);
    // Some maybe twice: a partition that took its part of the refused request keeps it, and the message is sent again.
    const keys = () => new Set(received.messages.map((m) => m.key!.toString()));
    await waitFor(() => ['a', 'b', 'c', 'e'].every((k) => keys().has(k)), 30_000, 'the 4 small messages');
    expect(keys().has('d')).to.equal(false);
  });
});
