import { expect } from 'chai';
import { ValidationError } from '../../src/engine/errors';
import { parseBookingInput } from '../../src/examples/booking/input';

describe('booking request validation', () => {
  it('accepts int64 as decimal strings and fills defaults', () => {
    expect(parseBookingInput({ ProductID: '5', Count: '2', FaultInject: true, DelayMs: '10' })).to.deep.equal({ productId: 5, count: 2, faultInject: true, delayMs: 10 });
    expect(parseBookingInput({ ProductID: 1 })).to.deep.equal({ productId: 1, count: 0, faultInject: false, delayMs: 0 });
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['ProductID 0', { ProductID: '0' }, 'ProductID'],
    ['a missing ProductID', {}, 'ProductID'],
    ['a negative Count', { ProductID: '1', Count: '-1' }, 'Count'],
    ['a non-integer Count', { ProductID: '1', Count: 'x' }, 'Count'],
    ['a huge DelayMs', { ProductID: '1', DelayMs: '999999' }, 'DelayMs'],
  ];
  for (const [what, req, field] of bad) {
    it(`rejects ${what}, naming ${field}`, () => {
      try {
        parseBookingInput(req);
      } catch (err) {
        expect(err).to.be.instanceOf(ValidationError);
        expect((err as ValidationError).field).to.equal(field);
        return;
      }
      throw new Error('expected a ValidationError');
    });
  }
});
