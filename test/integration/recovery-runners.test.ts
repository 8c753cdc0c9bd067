import { expect } from 'chai';
import type { EngineOptions } from '../../src/engine/orchestrator';
import { ended, holding, Instances } from '../helpers/instances';
import { waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = {
  stepTimeoutMs: 60_000,
  retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: 300,
  outcomePollMs: 50,
};

/** What recovery does with the visits of a saga whose owner died, by who runs them (real Postgres). */
describe('recovery and who runs a visit (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());

  it("a throttled step another live instance runs is not cut off when the caller's instance dies: it is undone after it acted", async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const held = holding('th.b');
    let finish!: () => void;
    const running = new Promise<void>((resolve) => { finish = resolve; });
    const owner = await instances.start(store, 'pod-a', {}, held.transport);
    const taker = await instances.start(store, 'pod-b', { b: { gate: running } });
    // fire-and-forget: the caller's instance dies below, so this call is never answered
    void owner.orchestrator.runThrottled('Throttled', 'runner-1', { n: 1 }).catch(() => undefined);
    await waitFor(() => held.held(), 10_000, "step b's message");
    // pod-b consumes b and runs it (taken on record), held until the test lets it finish.
    void taker.orchestrator.handle(held.held()).catch(() => undefined);
    await waitFor(() => taker.journal.calls.includes('run:b'), 10_000, 'pod-b to run b');
    owner.orchestrator.stop();
    // pod-b takes the saga over: its caller is gone, so it is compensated; b still runs on pod-b.
    const claimed = await waitFor(async () => {
      const s = await store.get('runner-1');
      return s?.status === 'COMPENSATING' && s.owner === taker.orchestrator.owner ? s : undefined;
    }, 10_000, 'pod-b to take the saga over and compensate it');
    expect(claimed.steps[1]).to.include({ name: 'b', status: 'RUNNING', runner: taker.orchestrator.owner });
    expect(taker.journal.calls).to.deep.equal(['run:b']);
    finish();
    const saga = await ended(store, 'runner-1');
    expect(saga.status).to.equal('COMPENSATED');
    // b acted (its output recorded) before it was undone, with that output.
    expect(taker.journal.calls).to.deep.equal(['run:b', 'undo:b', 'undo:a']);
    expect(taker.journal.undoOutputs?.b).to.deep.equal({ step: 'b', n: 1 });
  });
});
