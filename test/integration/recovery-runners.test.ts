import { expect } from 'chai';
import type { Pool } from 'pg';
import type { EngineOptions, Orchestrator } from '../../src/engine/orchestrator';
import type { SagaStore } from '../../src/engine/store';
import type { Journal } from '../helpers/fake-facade';
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

  it('an event that lands between the claim of a lapsed lease and its recovery: the step it starts runs once', async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const journal: Journal = { calls: [] };
    const start = (podId: string, s: SagaStore) => instances.run(s, podId, Instances.waitFacade('Beat', journal));
    const first = await start('pod-a', store);
    await first.startAsync('Beat', 'beat-1', { n: 1 });
    await waitFor(async () => (await store.get('beat-1'))?.steps[0].status === 'WAITING', 10_000, 'the wait');
    first.stop();
    // pod-b claims the lapsed saga; the event beats its recovery (written after the claim, before recovery works the copy out).
    const claim = store.claim.bind(store);
    const late: { second?: Orchestrator } = {};
    let injected = false;
    store.claim = async (...args) => {
      const claimed = await claim(...args);
      if (!injected && claimed.some((c) => c.requestId === 'beat-1')) {
        injected = true;
        await late.second!.sendEvent('beat-1', 'go', {});
      }
      return claimed;
    };
    const second = (late.second = await start('pod-b', store));
    expect(second.owner).to.match(/^pod-b\//);
    // Parked, it holds no lease; as if pod-a had died while driving it (a branch of it still
    // running), its lease lapses.
    const pool = (store as unknown as { pool: Pool }).pool;
    await pool.query("UPDATE sagas SET owner = $1, lease_expires_at = now() - interval '1 second' WHERE request_id = 'beat-1'", [first.owner]);
    const saga = await ended(store, 'beat-1');
    expect([saga.status, injected]).to.deep.equal(['COMPLETED', true]);
    expect(saga.steps.find((v) => v.name === 's')!.attempts).to.equal(1);
    expect(journal.calls).to.deep.equal(['run:s']);
  });
});
