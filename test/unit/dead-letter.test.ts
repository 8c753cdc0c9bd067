import { expect } from 'chai';
import { MessageTooLargeError, PoisonMessageError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import type { Message } from '../../src/engine/transport';
import { deliverOrDeadLetter } from '../../src/transport/dead-letter';

describe('dead-lettering', () => {
  const options = (publish: (m: Message) => Promise<void>) => ({ attempts: 3, backoffMs: 1, closing: () => false, deadLetterTopic: 'dlq', publish, log: silentLogger });
  const poison = async () => { throw new PoisonMessageError(`invalid event: ${'why '.repeat(1_000)}`); };

  it('a dead letter the broker would refuse as too large goes without its value, saying so: the message is not held forever', async () => {
    const sent: Message[] = [];
    const publish = async (m: Message) => {
      if (m.value.length > 100) throw new MessageTooLargeError(m.topic, `${m.value.length} bytes, over transport.kafka.maxMessageBytes (100)`);
      sent.push(m);
    };
    await deliverOrDeadLetter({ topic: 'events', key: 'r1', value: 'x'.repeat(1_000), headers: {} }, poison, options(publish));
    expect(sent).to.have.length(1);
    expect(sent[0]).to.include({ topic: 'dlq', key: 'r1', value: '' });
    expect(sent[0].headers['x-original-topic']).to.equal('events');
    expect(sent[0].headers['x-dead-letter-reason']).to.match(/^invalid event: why .*… \(value of 1000 bytes left out: message to dlq refused as too large/);
  });

  it('bounds the reason: an error quoting a large value does not make the dead letter larger than the message', async () => {
    const sent: Message[] = [];
    await deliverOrDeadLetter({ topic: 'events', key: 'r1', value: '{}', headers: {} }, poison, options(async (m) => { sent.push(m); }));
    expect(sent[0].headers['x-dead-letter-reason'].length).to.be.at.most(2_001);
  });
});
