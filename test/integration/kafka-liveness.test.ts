import { expect } from 'chai';
import type { KafkaTransport } from '../../src/transport/kafka-transport';
import { TOPICS } from '../../topics/topics';
import { collect, transportFor, uniqueKafkaNames } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Consumers stay in their group while a handler is slow, and a shutdown lets messages in hand publish. */
describe('KafkaTransport: liveness and shutdown (real broker)', function () {
  this.timeout(120_000);
  const open: KafkaTransport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('a handler slower than the session timeout (10 s) keeps its partition: two consumers in one group handle its message once', async () => {
    const names = uniqueKafkaNames();
    const topic = TOPICS.bookingAsyncCreatePayment.name;
    const handled: string[] = [];
    const consumers = await Promise.all(['one', 'two'].map(async (who) => {
      const transport = await transportFor(names);
      open.push(transport);
      await transport.subscribe([topic], async (m) => {
        handled.push(`${m.value}@${who}`);
        // The slow step: longer than the session timeout, as a step attempt may be (stepTimeoutMs).
        if (m.value === 'slow') await sleep(14_000);
      });
      return transport;
    }));
    await consumers[0].publish({ topic, key: 'saga-1', value: 'slow', headers: {} });
    await waitFor(() => handled.length > 0, 20_000, 'the slow message to be taken');
    // Same key, same partition, after it: once it is handled, any redelivery of the slow one has happened.
    await consumers[0].publish({ topic, key: 'saga-1', value: 'after', headers: {} });
    await waitFor(() => handled.some((h) => h.startsWith('after@')), 60_000, 'the message after the slow one');
    expect(handled.filter((h) => h.startsWith('slow@'))).to.have.length(1);
  });

  it('while draining, a message in hand still publishes what it must; the transport closes after it', async () => {
    const names = uniqueKafkaNames();
    const transport = await transportFor(names);
    const out = await collect(names.topicPrefix + TOPICS.bookingAsyncRollback.name);
    const results: string[] = [];
    let taken = false;
    await transport.subscribe([TOPICS.bookingAsyncCreateOrder.name], async (m) => {
      taken = true;
      await sleep(1_000);
      await transport.publish({ topic: TOPICS.bookingAsyncRollback.name, key: m.key, value: `next of ${m.value}`, headers: {} })
        .then(() => results.push('published'), (err: Error) => results.push(`refused: ${err.message}`));
    });
    await transport.publish({ topic: TOPICS.bookingAsyncCreateOrder.name, key: 'k', value: 'step', headers: {} });
    await waitFor(() => taken, 20_000, 'the message to be in hand');
    await transport.close();
    expect(results).to.deep.equal(['published']);
    const next = await waitFor(() => out.messages[0], 20_000, 'the published message');
    await out.stop();
    expect(next.value!.toString()).to.equal('next of step');
    let refused: Error | undefined;
    await transport.publish({ topic: TOPICS.bookingAsyncRollback.name, key: 'k', value: 'late', headers: {} }).catch((e: Error) => { refused = e; });
    expect(refused?.message).to.equal('transport is closed');
  });
});
