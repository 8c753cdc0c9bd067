import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { collect, KAFKA_BROKERS, testKafka, uniqueKafkaNames } from '../helpers/kafka';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

/** The booking facades with the orchestrator process on the real Kafka broker. */
describe('booking over gRPC on Kafka', function () {
  this.timeout(90_000);
  let stack: Stack;
  const names = uniqueKafkaNames();
  before(async () => {
    stack = await Stack.start({ transport: 'kafka', kafka: { ...names, brokers: KAFKA_BROKERS } });
  });
  after(async () => {
    await stack?.stop();
  });

  it('created every topic declared in topics/ on the broker', async () => {
    const admin = testKafka().admin();
    await admin.connect();
    const topics = await admin.listTopics().finally(() => admin.disconnect());
    expect(topics).to.include.members(ALL_TOPICS.map((t) => names.topicPrefix + t.name));
  });

  it('async booking completes through the node topics', async () => {
    const { response } = await call<{ RequestID: string }>(stack.booking, 'HandleAsyncBooking', { ProductID: 1 }, { 'x-request-id': 'ka-1' });
    expect(response.RequestID).to.equal('ka-1');
    await stack.sagaReaches('ka-1', 'COMPLETED', 20_000);
  });

  it('async booking with FaultInject is compensated through the rollback topic', async () => {
    await call(stack.booking, 'HandleAsyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'ka-2' });
    await stack.sagaReaches('ka-2', 'COMPENSATED', 20_000);
    expect((await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'ka-2' })).response.status).to.equal('CANCELLED');
  });

  it('sync booking with FaultInject is ABORTED and compensated by the rollback consumer on Kafka', async () => {
    const err = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'ks-1' }));
    expect(err.code).to.equal(grpc.status.ABORTED);
    await stack.sagaReaches('ks-1', 'COMPENSATED', 5_000);
  });

  it('a garbage message on a node topic lands on the dead-letter topic; sagas after it complete', async () => {
    const dead = await collect(names.topicPrefix + TOPICS.deadLetter.name);
    const producer = testKafka().producer();
    await producer.connect();
    await producer.send({ topic: names.topicPrefix + TOPICS.bookingAsyncCreateOrder.name, messages: [{ key: 'junk', value: '\u0000not json{' }] });
    await producer.disconnect();
    const letter = await waitFor(() => dead.messages.find((m) => m.key?.toString() === 'junk'), 20_000, 'the dead letter');
    await dead.stop();
    expect(letter.headers!['x-dead-letter-reason']!.toString()).to.match(/^not JSON/);
    expect(letter.headers!['x-original-topic']!.toString()).to.equal(TOPICS.bookingAsyncCreateOrder.name);
    await call(stack.booking, 'HandleAsyncBooking', { ProductID: 2 }, { 'x-request-id': 'ka-after' });
    await stack.sagaReaches('ka-after', 'COMPLETED', 20_000);
  });
});
