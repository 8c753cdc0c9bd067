import { expect } from 'chai';
import { PoisonMessageError } from '../../src/engine/errors';
import { decodeMessage, encodeMessage, type StepMessage } from '../../src/engine/messages';

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
