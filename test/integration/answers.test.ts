import type { StepDefinition } from '../../src/engine/facade';
import { expect } from 'chai';
import { OrchestratorError, SagaAbortedError, StepError } from '../../src/engine/errors';
import type { EngineOptions } from '../../src/engine/orchestrator';
import type { SagaStore } from '../../src/engine/store';
import type { FakeStepOptions } from '../helpers/fake-facade';
import { ended, Instances } from '../helpers/instances';
import { rejectionOf, waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = {
  stepTimeoutMs: 60_000,
  retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: 1_000,
  outcomePollMs: 20,
};

/** Every caller of one request id gets one answer: the first caller's, from what the store keeps (Postgres). */
describe('one answer per request id (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());
  const store = () => instances.store(1_000);
  const instance = (s: SagaStore, podId: string, steps: Record<string, FakeStepOptions> = {}) => instances.start(s, podId, steps);

  // Step errors whose wording says nothing of their code, or says the wrong thing.
  const cases: [string, StepError][] = [
    ['UNAVAILABLE', new StepError('UNAVAILABLE', 'payment service is restarting', true)],
    ['FAILED_PRECONDITION', new StepError('FAILED_PRECONDITION', 'card declined: spending limit reached before the deadline', false)],
    ['INVALID_ARGUMENT', new StepError('INVALID_ARGUMENT', 'currency not supported', false)],
  ];
  for (const [code, error] of cases) {
    it(`a duplicate caller of a saga aborted with ${code} is answered with ${code}, as the first one was`, async () => {
      const s = await store();
      const one = await instance(s, 'pod-1');
      const { orchestrator } = one;
      const other = await instance(s, 'pod-2');
      // Step b fails with `error`: the fake step's own errors are replaced for this test.
      for (const { registry } of [one, other]) (registry.get('Sync').nodes[1] as StepDefinition).run = async () => { throw error; };
      const first = await rejectionOf(orchestrator.runSync('Sync', `dup-${code}`, { n: 1 }));
      expect(first).to.be.instanceOf(SagaAbortedError);
      expect((first as unknown as SagaAbortedError).causeCode).to.equal(code);
      for (const o of [orchestrator, other.orchestrator]) {
        const again = await rejectionOf(o.runSync('Sync', `dup-${code}`, { n: 1 }));
        expect(again).to.be.instanceOf(SagaAbortedError);
        expect({ code: (again as unknown as SagaAbortedError).causeCode, message: again.message }).to.deep.equal({ code, message: first.message });
      }
      expect((await s.get(`dup-${code}`))!.errorCode).to.equal(code);
    });
  }

  it('a duplicate throttled caller that goes away ends nothing: the first caller gets the result', async () => {
    const s = await store();
    const a = await instance(s, 'pod-a', { b: { runMs: 500 } });
    const b = await instance(s, 'pod-b');
    const first = a.orchestrator.runThrottled('Throttled', 'th-dup', { n: 1 });
    await waitFor(async () => (await s.get('th-dup'))?.steps[1].status === 'RUNNING', 10_000, 'step b to start');
    const gone = new AbortController();
    const duplicate = b.orchestrator.runThrottled('Throttled', 'th-dup', { n: 1 }, { signal: gone.signal });
    gone.abort(new OrchestratorError('CANCELLED', 'the caller cancelled the call'));
    expect((await rejectionOf(duplicate)).code).to.equal('CANCELLED');
    expect(await first).to.deep.equal(['a', 'b', 'c']);
    expect((await ended(s, 'th-dup')).status).to.equal('COMPLETED');
    expect(a.journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
  });

  it('a throttled caller that cancels is answered CANCELLED, not DEADLINE_EXCEEDED, and so is every later caller', async () => {
    const s = await store();
    const a = await instance(s, 'pod-a', { b: { runMs: 500 } });
    const gone = new AbortController();
    const first = a.orchestrator.runThrottled('Throttled', 'th-cancel', { n: 1 }, { signal: gone.signal });
    await waitFor(async () => (await s.get('th-cancel'))?.steps[1].status === 'RUNNING', 10_000, 'step b to start');
    gone.abort(new OrchestratorError('CANCELLED', 'the caller cancelled the call'));
    expect((await rejectionOf(first)).code).to.equal('CANCELLED');
    const saga = await ended(s, 'th-cancel');
    expect(saga).to.include({ status: 'COMPENSATED', errorCode: 'CANCELLED' });
    const later = await rejectionOf(a.orchestrator.runThrottled('Throttled', 'th-cancel', { n: 1 }));
    expect((later as unknown as SagaAbortedError).causeCode).to.equal('CANCELLED');
  });
});
