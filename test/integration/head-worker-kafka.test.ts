import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { HEADERS } from '../../src/engine/transport';
import type { ExternalStepCommand, HeadCommand } from '../../src/examples/hammer/services/head-worker';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { TOPICS } from '../../topics/topics';
import { collect, KAFKA_BROKERS, testKafka, uniqueKafkaNames } from '../helpers/kafka';
import { freePort, Proc, call, waitServing } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

/**
 * The demo factory process with its head worker on the real broker, the orchestrator's side played
 * by the test: a command published on the head-commands topic is answered on the step-replies topic.
 */
describe('hammer head worker in the demo factory process, on Kafka', function () {
  this.timeout(90_000);
  const names = uniqueKafkaNames();
  let factory: Proc | undefined;
  let client: grpc.Client | undefined;

  before(async () => {
    const address = `127.0.0.1:${await freePort()}`;
    factory = new Proc(['dist/src/examples/hammer/services/main.js', 'factory', address], {
      DEMO_KAFKA_BROKERS: KAFKA_BROKERS.join(','), DEMO_TOPIC_PREFIX: names.topicPrefix, DEMO_KAFKA_GROUP_ID: `${names.groupId}.demo-factory`,
    });
    // It serves once its worker joined the group (and created the topics it uses).
    await waitServing(address, factory, 60_000);
    client = new (clientOf(loadProtos(['factory.proto']), 'factory.v1.FactoryService'))(address, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    factory?.kill('SIGTERM');
    expect(await factory?.exited).to.equal(0);
  });

  it('makes the head and replies {step, visit, output: {headId}} keyed by the request; a poison command is dead-lettered', async () => {
    const replies = await collect(names.topicPrefix + TOPICS.stepReplies.name);
    const dead = await collect(names.topicPrefix + TOPICS.deadLetter.name);
    const command: ExternalStepCommand<HeadCommand> = {
      requestId: 'k1', facade: 'Hammer', step: 'head', visit: 1, attempt: 1, idempotencyKey: 'k1:head', replyTopic: TOPICS.stepReplies.name,
      payload: { headType: 'claw', delayMs: 200 },
    };
    const producer = testKafka().producer();
    await producer.connect();
    try {
      await producer.send({
        topic: names.topicPrefix + TOPICS.hammerHeadCommands.name,
        messages: [
          { key: 'junk', value: '{"requestId": 7}' },
          { key: 'k1', value: JSON.stringify(command), headers: { [HEADERS.requestId]: 'k1', [HEADERS.facade]: 'Hammer', [HEADERS.node]: 'head', [HEADERS.attempt]: '1' } },
        ],
      });
    } finally {
      await producer.disconnect();
    }
    const reply = await waitFor(() => replies.messages.find((m) => m.key?.toString() === 'k1'), 30_000, 'the reply');
    const letter = await waitFor(() => dead.messages.find((m) => m.key?.toString() === 'junk'), 30_000, 'the dead letter');
    await Promise.all([replies.stop(), dead.stop()]);
    expect(JSON.parse(reply.value!.toString())).to.deep.equal({ step: 'head', visit: 1, output: { headId: 'head-1' } });
    expect(reply.headers![HEADERS.requestId]!.toString()).to.equal('k1');
    expect(letter.headers![HEADERS.deadLetterReason]!.toString()).to.equal('requestId: must be a non-empty string');

    const { calls } = (await call<{ calls: { method: string; idempotency_key: string; head_id: string; started_at_ms: string; ended_at_ms: string }[] }>(client!, 'ListFactoryCalls', {})).response;
    expect(calls.map((c) => [c.method, c.idempotency_key, c.head_id])).to.deep.equal([['MakeHead', 'k1:head', 'head-1']]);
    expect(Number(calls[0].ended_at_ms) - Number(calls[0].started_at_ms)).to.be.at.least(195);
    const counts = (await call<{ calls: { method: string; idempotency_key: string; count: number }[] }>(client!, 'ListCalls', {})).response.calls;
    expect(counts).to.deep.include({ method: 'MakeHead', idempotency_key: 'k1:head', count: 1 });
  });
});
