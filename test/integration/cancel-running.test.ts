import { expect } from 'chai';
import type { EngineOptions } from '../../src/engine/orchestrator';
import { ended, Instances } from '../helpers/instances';
import { rejectionOf, waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = {
  // Long enough that a rollback waiting out a running visit's timeout would outlast the test.
  stepTimeoutMs: 120_000,
  retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: 2_000,
  outcomePollMs: 50,
};

/** CancelSaga while a step runs in-process (real Postgres): the step finishes, then everything is undone. */
describe('cancelling a saga whose step runs (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());

  for (const outcome of ['succeeds', 'fails'] as const) {
    it(`a sync step that ${outcome} after the cancel is on record at once and undone with its output, not after its timeout`, async () => {
      const store = await instances.store(OPTIONS.leaseTtlMs!);
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => { finish = resolve; });
      const { orchestrator, journal } = await instances.start(store, 'pod-1', { b: { gate, failRuns: outcome === 'fails' ? 1 : 0 } });
      const call = orchestrator.runSync('Sync', 'cancel-1', { n: 1 });
      await waitFor(async () => (await store.get('cancel-1'))?.steps[1].status === 'RUNNING', 10_000, 'step b to run');
      await orchestrator.cancelSaga('cancel-1');
      finish();
      expect(await rejectionOf(call)).to.include({ code: 'SAGA_ABORTED', causeCode: 'CANCELLED' });
      const saga = await ended(store, 'cancel-1');
      expect(saga.status).to.equal('COMPENSATED');
      expect(saga.steps[1].status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'undo:b', 'undo:a']);
      // A compensation is given what the step returned, when it returned something.
      expect(journal.undoOutputs?.b).to.deep.equal(outcome === 'succeeds' ? { step: 'b', n: 1 } : undefined);
    });
  }
});
