import { expect } from 'chai';
import { PoisonMessageError } from '../../src/engine/errors';
import { decodeMessage, encodeMessage, type StepMessage } from '../../src/engine/messages';

const step: StepMessage = { kind: 'step', requestId: 'r1', facade: 'F', version: 1, node: 'a', visit: 1, attempt: 1, input: { n: 1 }, results: {} };

describe('saga messages', () => {
  it('are keyed by request id, carry the saga headers and round-trip as JSON', () => {
    const m = encodeMessage('t.a', step);
    expect(m.key).to.equal('r1');
    expect(m.headers).to.include({ 'x-request-id': 'r1', 'x-facade': 'F', 'x-node': 'a', 'x-attempt': '1', 'content-type': 'application/json' });
    expect(decodeMessage(m)).to.deep.equal(step);
  });

  it('name the failed node in a rollback message header', () => {
    const m = encodeMessage('rb', { kind: 'rollback', requestId: 'r1', facade: 'F', version: 1, failedNode: 'b', error: { code: 'X', message: 'boom' }, completed: [], input: null });
    expect(m.headers['x-node']).to.equal('b');
  });

  const bad: [string, string, RegExp][] = [
    ['garbage', 'not json at all', /not JSON/],
    ['an unknown kind', JSON.stringify({ ...step, kind: 'other' }), /invalid saga message: kind/],
    ['a missing request id', JSON.stringify({ ...step, requestId: '' }), /invalid saga message: requestId/],
    ['a bad attempt', JSON.stringify({ ...step, attempt: 0 }), /invalid saga message: attempt/],
    ['a rollback without completed steps', JSON.stringify({ kind: 'rollback', requestId: 'r', facade: 'F', version: 1, failedNode: 'a', error: { code: 'X', message: 'm' }, input: null }), /completed/],
  ];
  for (const [what, value, reason] of bad) {
    it(`reject ${what} as a poison message saying why`, () => {
      expect(() => decodeMessage({ topic: 't', key: 'k', value, headers: {} })).to.throw(PoisonMessageError, reason);
    });
  }
});
