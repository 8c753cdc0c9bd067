import { expect } from 'chai';
import { silentLogger } from '../../src/engine/logger';
import { Saga } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import { MemorySagaStore } from '../../src/store/memory-store';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { freshDatabase } from '../helpers/postgres';

/** Sagas in every state the gauges tell apart, written through the store as the engine writes them. */
async function seed(store: SagaStore): Promise<void> {
  const start = async (id: string, facade: string, version: number, steps: string[], move: (s: Saga) => void) => {
    const saga = Saga.start({ requestId: id, facade, version, mode: 'async', input: {}, steps, podId: 'p', owner: 'p/1' });
    saga.saved((await store.create(saga.view())).saga.revision);
    move(saga);
    saga.saved(await store.save(saga.view(), saga.changes()));
  };
  const soon = new Date(Date.now() + 600_000);
  await start('done', 'A', 1, ['a'], (s) => { s.stepStarted('a'); s.stepSucceeded('a', 1); s.complete(1); });
  await start('running', 'A', 1, ['a'], (s) => { s.stepStarted('a'); });
  await start('waiting-1', 'A', 2, ['a', 'w'], (s) => { s.stepStarted('a'); s.stepSucceeded('a', 1); s.parked('w', soon, 'event'); s.rearm(); });
  await start('waiting-2', 'A', 2, ['a', 'w'], (s) => { s.stepStarted('a'); s.stepSucceeded('a', 1); s.parked('w', soon, 'event'); s.rearm(); });
  // A retry timer due 5 s ago and never fired: due and overdue.
  await start('retrying', 'B', 1, ['b'], (s) => { s.stepStarted('b'); s.stepRetrying('b', 'down', new Date(Date.now() - 5_000)); s.rearm(); });
  // Two visits of one node (a loop) parked at once count the saga once.
  await start('loop', 'B', 1, ['w'], (s) => { s.parked('w', undefined, 'e'); s.stepSucceeded('w', 1); s.parked(s.reopen('w'), undefined, 'e'); });
  await start('compensating', 'B', 1, ['b'], (s) => { s.stepStarted('b'); s.stepFailed('b', 'x'); s.startCompensating('b', 'x', 'ABORTED'); });
}

function contract(name: string, make: () => Promise<{ store: SagaStore; close: () => Promise<void> }>): void {
  describe(`store gauges for metrics: ${name}`, function () {
    this.timeout(30_000);
    it('counts unfinished sagas by facade, version and status, parked ones by node and why, and due and overdue timers', async () => {
      const { store, close } = await make();
      try {
        await seed(store);
        const g = await store.gauges(1_000);
        const sort = <T>(rows: T[]) => rows.map((r) => JSON.stringify(r)).sort();
        expect(sort(g.sagas)).to.deep.equal(sort([
          { facade: 'A', version: 1, status: 'RUNNING', sagas: 1 },
          { facade: 'A', version: 2, status: 'RUNNING', sagas: 2 },
          { facade: 'B', version: 1, status: 'RUNNING', sagas: 2 },
          { facade: 'B', version: 1, status: 'COMPENSATING', sagas: 1 },
        ]));
        expect(sort(g.parked)).to.deep.equal(sort([
          { facade: 'A', version: 2, node: 'w', status: 'WAITING', sagas: 2 },
          { facade: 'B', version: 1, node: 'b', status: 'RETRYING', sagas: 1 },
          { facade: 'B', version: 1, node: 'w', status: 'WAITING', sagas: 1 },
        ]));
        expect({ due: g.timersDue, overdue: g.timersOverdue }).to.deep.equal({ due: 1, overdue: 1 });
        expect((await store.gauges(10_000)).timersOverdue, 'not yet overdue by 10 s').to.equal(0);
      } finally {
        await close();
      }
    });
  });
}

contract('MemorySagaStore', async () => ({ store: new MemorySagaStore(10_000), close: async () => undefined }));
contract('PostgresSagaStore', async () => {
  const db = await freshDatabase();
  const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 2, leaseTtlMs: 10_000 }, silentLogger);
  return { store, close: async () => { await store.close(); await db.drop(); } };
});
