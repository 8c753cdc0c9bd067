import { expect } from 'chai';
import { PoisonMessageError } from '../../src/engine/errors';
import { decodeEvent, decodeMessage, encodeMessage, type HandbackMessage, type StepMessage } from '../../src/engine/messages';

const step: StepMessage = { kind: 'step', requestId: 'r1', facade: 'F', version: 1, node: 'a', visit: 1, attempt: 1 };

describe('saga messages', () => {
  it('are keyed by request id, carry the saga headers and round-trip as JSON', () => {
    const m = encodeMessage('t.a', step);
    expect(m.key).to.equal('r1');
    expect(m.headers).to.include({ 'x-request-id': 'r1', 'x-facade': 'F', 'x-node': 'a', 'x-attempt': '1', 'content-type': 'application/json' });
    expect(decodeMessage(m)).to.deep.equal(step);
  });

  it('name the failed node in a rollback message header', () => {
    const m = encodeMessage('rb', { kind: 'rollback', requestId: 'r1', facade: 'F', version: 1, failedNode: 'b', error: { code: 'X', message: 'boom' }, completed: [] });
    expect(m.headers['x-node']).to.equal('b');
  });

  it('hand back an event and a step reply (with its pinned visit) as they came, the reply naming its step in the header', () => {
    const base = { kind: 'handback', requestId: 'r1', facade: 'F', version: 2, from: 'pod/1' } as const;
    const event: HandbackMessage = { ...base, topic: 'ev', message: { kind: 'event', requestId: 'r1', event: 'go', payload: { a: 1 }, idempotencyKey: 'k' } };
    const reply: HandbackMessage = { ...base, topic: 'rp', message: { kind: 'reply', requestId: 'r1', step: 'quote', visit: 2, output: { p: 1 } } };
    expect(decodeMessage(encodeMessage('o', event))).to.deep.equal(event);
    expect(decodeMessage(encodeMessage('o', reply))).to.deep.equal(reply);
    expect(encodeMessage('o', reply).headers['x-node']).to.equal('quote');
  });

  it('key an event without an idempotency key on its record: the same record alike, another record not, its own key first', () => {
    const value = JSON.stringify({ event: 'go', payload: {} });
    const at = (offset: string, partition = 3) => decodeEvent({ topic: 'events', key: 'r1', value, headers: {}, partition, offset }).idempotencyKey;
    expect(at('17')).to.equal('record:events/3/17');
    expect(at('17')).to.equal(at('17'));
    expect(at('18')).not.to.equal(at('17'));
    expect(at('17', 4)).not.to.equal(at('17'));
    const own = JSON.stringify({ event: 'go', payload: {}, idempotencyKey: 'mine' });
    expect(decodeEvent({ topic: 'events', key: 'r1', value: own, headers: {}, partition: 3, offset: '17' }).idempotencyKey).to.equal('mine');
    expect(decodeEvent({ topic: 'events', key: 'r1', value, headers: {} }).idempotencyKey).to.equal(undefined);
  });

  it('carry no input or outputs, only the empty fields the previous release\'s decoder requires', () => {
    const rollback = encodeMessage('rb', { kind: 'rollback', requestId: 'r1', facade: 'F', version: 1, failedNode: 'b', error: { code: 'X', message: 'boom' }, completed: [{ node: 'a' }] });
    expect(JSON.parse(rollback.value)).to.deep.include({ input: null, completed: [{ node: 'a', output: null }] });
    const m = encodeMessage('t.a', step);
    expect(JSON.parse(m.value)).to.deep.include({ input: null, results: {} });
    expect(m.value.length).to.be.below(200);
  });

  it('decode a message of the previous release (input and outputs on board), dropping them', () => {
    const old = { ...step, input: { pad: 'x'.repeat(1_000) }, results: { a: { pad: 'y' } } };
    expect(decodeMessage({ topic: 't.a', key: 'r1', value: JSON.stringify(old), headers: {} })).to.deep.equal(step);
    const rollback = { kind: 'rollback', requestId: 'r1', facade: 'F', version: 1, failedNode: 'b', error: { code: 'X', message: 'm' }, completed: [{ node: 'a' }] };
    const oldRollback = { ...rollback, completed: [{ node: 'a', output: { big: 'z' } }], input: { n: 1 } };
    expect(decodeMessage({ topic: 'rb', key: 'r1', value: JSON.stringify(oldRollback), headers: {} })).to.deep.equal(rollback);
  });

  const bad: [string, string, RegExp][] = [
    ['garbage', 'not json at all', /not JSON/],
    ['an unknown kind', JSON.stringify({ ...step, kind: 'other' }), /invalid saga message: kind/],
    ['a missing request id', JSON.stringify({ ...step, requestId: '' }), /invalid saga message: requestId/],
    ['a bad attempt', JSON.stringify({ ...step, attempt: 0 }), /invalid saga message: attempt/],
    ['a rollback without completed steps', JSON.stringify({ kind: 'rollback', requestId: 'r', facade: 'F', version: 1, failedNode: 'a', error: { code: 'X', message: 'm' } }), /completed/],
  ];
  for (const [what, value, reason] of bad) {
    it(`reject ${what} as a poison message saying why`, () => {
      expect(() => decodeMessage({ topic: 't', key: 'k', value, headers: {} })).to.throw(PoisonMessageError, reason);
    });
  }
});
