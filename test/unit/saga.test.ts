import { expect } from 'chai';
import { IllegalTransitionError } from '../../src/engine/errors';
import { Saga, SAGA_TRANSITIONS, TERMINAL_STATUSES } from '../../src/engine/saga';

const start = () => Saga.start({ requestId: 'r1', facade: 'F', version: 1, mode: 'sync', input: { a: 1 }, steps: ['a', 'b'], podId: 'p1' });

describe('Saga state machine', () => {
  it('starts RUNNING with PENDING steps and a SAGA_STARTED event', () => {
    const s = start().snapshot();
    expect(s.status).to.equal('RUNNING');
    expect(s.steps.map((x) => x.status)).to.deep.equal(['PENDING', 'PENDING']);
    expect(s.history.map((e) => e.type)).to.deep.equal(['SAGA_STARTED']);
    expect(s.history[0].podId).to.equal('p1');
  });

  it('records a full run in an append-only history with increasing seq', () => {
    const saga = start();
    saga.stepStarted('a');
    saga.stepSucceeded('a', { x: 1 });
    saga.stepStarted('b');
    saga.stepSucceeded('b', { y: 2 });
    saga.complete({ done: true });
    const s = saga.snapshot();
    expect(s.status).to.equal('COMPLETED');
    expect(s.output).to.deep.equal({ done: true });
    expect(s.history.map((e) => e.type)).to.deep.equal([
      'SAGA_STARTED', 'STEP_STARTED', 'STEP_SUCCEEDED', 'STEP_STARTED', 'STEP_SUCCEEDED', 'SAGA_COMPLETED',
    ]);
    expect(s.history.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('ends COMPLETED or COMPENSATED, moving only along the documented transitions (no FAILED status)', () => {
    expect(SAGA_TRANSITIONS).to.deep.equal({
      RUNNING: ['COMPLETED', 'COMPENSATING'],
      COMPENSATING: ['COMPENSATED', 'COMPENSATION_FAILED'],
      COMPENSATION_FAILED: ['COMPENSATING'],
      COMPLETED: [],
      COMPENSATED: [],
    });
    expect(TERMINAL_STATUSES).to.have.members(['COMPLETED', 'COMPENSATED']);
    expect(start()).not.to.have.property('fail');
  });

  it('refuses every transition out of a terminal status', () => {
    for (const terminal of TERMINAL_STATUSES) expect(SAGA_TRANSITIONS[terminal]).to.be.empty;
    const saga = start();
    saga.complete(null);
    expect(() => saga.startCompensating('a', 'boom', 'INTERNAL')).to.throw(IllegalTransitionError, /COMPLETED -> COMPENSATING/);
    expect(saga.status).to.equal('COMPLETED');
  });

  it('refuses to compensate a step that never succeeded, and leaves it unchanged', () => {
    const saga = start();
    expect(() => saga.compensationStarted('a')).to.throw(IllegalTransitionError, /PENDING -> COMPENSATING/);
    expect(saga.step('a').status).to.equal('PENDING');
  });

  it('counts compensation attempts and ends COMPENSATION_FAILED on the last one', () => {
    const saga = start();
    saga.stepStarted('a');
    saga.stepSucceeded('a', 1);
    saga.startCompensating('b', 'boom', 'INTERNAL');
    saga.compensationStarted('a');
    saga.compensationAttemptFailed('a', 'e1', false);
    saga.compensationStarted('a');
    saga.compensationAttemptFailed('a', 'e2', true);
    saga.compensationFailed('gave up');
    const step = saga.snapshot().steps[0];
    expect(step.status).to.equal('COMPENSATION_FAILED');
    expect(step.compensationAttempts).to.equal(2);
    expect(step.error).to.equal('e2');
    expect(saga.snapshot().error).to.equal('gave up');
    saga.retryCompensation();
    expect(saga.status).to.equal('COMPENSATING');
    expect(saga.step('a').compensationAttempts).to.equal(0);
    expect(saga.compensationStarted('a')).to.equal(1);
  });

  it('refuses illegal saga transitions and writes nothing', () => {
    const saga = start();
    const before = saga.snapshot();
    expect(() => saga.compensated()).to.throw(IllegalTransitionError, /RUNNING -> COMPENSATED/);
    expect(() => saga.retryCompensation()).to.throw(IllegalTransitionError, /RUNNING -> COMPENSATING/);
    expect(saga.snapshot()).to.deep.equal(before);
  });

  it('lets a failed or interrupted step be compensated (it may have acted)', () => {
    const saga = start();
    saga.stepStarted('a');
    saga.startCompensating('a', 'crash', 'UNAVAILABLE');
    expect(saga.compensationStarted('a')).to.equal(1);
  });

  it('snapshots are copies: changing one does not change the saga', () => {
    const saga = start();
    const snap = saga.snapshot();
    snap.steps[0].status = 'SUCCEEDED';
    (snap.input as { a: number }).a = 99;
    expect(saga.step('a').status).to.equal('PENDING');
    expect(saga.snapshot().input).to.deep.equal({ a: 1 });
    expect(Saga.fromSnapshot(snap, 'p2').step('a').status).to.equal('SUCCEEDED');
  });
});
