import { expect } from 'chai';
import type { EngineOptions } from '../../src/engine/orchestrator';
import type { Journal } from '../helpers/fake-facade';
import { Instances } from '../helpers/instances';
import { rejectionOf, waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = { heartbeatMs: 50, leaseTtlMs: 2_000, recoveryIntervalMs: 50, maxEventsPerSaga: 3 };

/** A saga's history is read whole with it: what a sender can add to it is bounded (real Postgres). */
describe('events one saga takes in (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());

  it('past limits.maxEventsPerSaga an event is refused with RESOURCE_EXHAUSTED naming it; a repeat still answers OK', async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const journal: Journal = { calls: [] };
    // The step runs before the wait: events sent meanwhile are kept, and count.
    let release!: () => void;
    const registry = Instances.waitFacade('Kept', journal, true);
    (registry.get('Kept').nodes[0] as { run: unknown }).run = () => new Promise((resolve) => { release = () => resolve({}); });
    const orchestrator = await instances.run(store, 'pod-1', registry);
    await orchestrator.startAsync('Kept', 'kept-1', { n: 1 });
    await waitFor(() => release !== undefined, 10_000, 'the step to run');
    for (const key of ['k1', 'k2', 'k3']) await orchestrator.sendEvent('kept-1', 'go', { key }, key);
    const refused = await rejectionOf(orchestrator.sendEvent('kept-1', 'go', { key: 'k4' }, 'k4'));
    expect(refused.code).to.equal('RESOURCE_EXHAUSTED');
    expect(refused.message).to.match(/3 events.*limits\.maxEventsPerSaga: 3/);
    await orchestrator.sendEvent('kept-1', 'go', { key: 'k2' }, 'k2');
    const saga = (await store.get('kept-1'))!;
    expect(saga.history.filter((e) => e.type === 'EVENT_RECEIVED')).to.have.length(3);
    release();
    await waitFor(async () => (await store.get('kept-1'))?.status === 'COMPLETED', 10_000, 'the saga to take a kept event and complete');
  });
});
