import { expect } from 'chai';
import type { Pool } from 'pg';
import type { EngineOptions } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaStore } from '../../src/engine/store';
import type { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { fakeFacade, fakeStep, type Journal } from '../helpers/fake-facade';
import { ended, Instances } from '../helpers/instances';
import { waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = {
  stepTimeoutMs: 60_000,
  recoveryIntervalMs: 20,
  timerPollMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: 400,
  outcomePollMs: 50,
  recoveryBatch: 5,
};
/** An instance that claims nothing after its first pass: only the other one can fire timers. */
const NO_CLAIMS: Partial<EngineOptions> = { ...OPTIONS, timerPollMs: 3_600_000, recoveryIntervalMs: 3_600_000 };

/** An async facade that sleeps `ms`, then runs step s (topic t.a). */
function sleepFacade(journal: Journal, ms: number): FacadeRegistry {
  const step = { ...fakeStep('s', journal), topic: 't.a', after: ['nap'] };
  return new FacadeRegistry().register({ ...fakeFacade('Nap', 'async', [], 'rb.async'), nodes: [{ kind: 'sleep' as const, name: 'nap', delayMs: ms }, step] });
}

const poolOf = (store: SagaStore): Pool => (store as unknown as { pool: Pool }).pool;

/** Row versions (xmin) of the sagas' rows and their steps' rows: any write changes them. */
async function rowVersions(pool: Pool, ids: string[]): Promise<string[]> {
  const rows = await pool.query<{ v: string }>(
    `SELECT request_id || ':' || xmin::text AS v FROM sagas WHERE request_id = ANY($1)
     UNION ALL SELECT request_id || '/' || name || ':' || xmin::text FROM saga_steps WHERE request_id = ANY($1) ORDER BY 1`, [ids]);
  return rows.rows.map((r) => r.v);
}

/** Counts the heartbeats' renewals, where they reach the store. */
function countRenewals(store: PostgresSagaStore): { n: number } {
  const count = { n: 0 };
  const renew = store.renewLeases.bind(store);
  store.renewLeases = (owner, except) => { count.n++; return renew(owner, except); };
  return count;
}

/** A saga parked on a wait or a sleep holds no lease: heartbeats never write it, and any instance moves it on (real Postgres). */
describe('parked sagas hold no lease (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  const quiet = new Instances(NO_CLAIMS);
  afterEach(async () => { await instances.cleanup(); await quiet.cleanup(); });

  it('a saga parked on a wait has no owner and no lease, and idle heartbeats write none of its rows', async () => {
    const store = await instances.store(400);
    const renewals = countRenewals(store);
    const journal: Journal = { calls: [] };
    const a = await instances.run(store, 'pod-a', Instances.waitFacade('Park', journal));
    const ids = Array.from({ length: 20 }, (_, i) => `park-${i}`);
    for (const id of ids) await a.startAsync('Park', id, { n: 1 });
    await waitFor(async () => (await Promise.all(ids.map((id) => store.get(id)))).every((s) => s?.steps[0].status === 'WAITING' && s.owner === undefined),
      20_000, 'every saga parked, with no owner');
    const leases = await poolOf(store).query<{ n: number }>('SELECT count(*)::int AS n FROM sagas WHERE request_id = ANY($1) AND lease_expires_at IS NOT NULL', [ids]);
    expect(leases.rows[0].n).to.equal(0);

    const before = await rowVersions(poolOf(store), ids);
    const from = renewals.n;
    await waitFor(() => renewals.n >= from + 10 || undefined, 20_000, 'ten heartbeats');
    expect(await rowVersions(poolOf(store), ids)).to.deep.equal(before);
    expect(journal.calls).to.have.length(0);
  });

  it('an event sent through another instance moves a parked saga on, and that instance runs what follows', async () => {
    const store = await instances.store(400);
    const journalA: Journal = { calls: [] };
    const journalB: Journal = { calls: [] };
    const a = await instances.run(store, 'pod-a', Instances.waitFacade('Park', journalA));
    const b = await instances.run(store, 'pod-b', Instances.waitFacade('Park', journalB));
    await a.startAsync('Park', 'moved-1', { n: 1 });
    await waitFor(async () => ((await store.get('moved-1'))?.owner === undefined && (await store.get('moved-1'))?.steps[0].status === 'WAITING') || undefined,
      20_000, 'the saga parked');
    await b.sendEvent('moved-1', 'go', { ok: true }, 'ev-1');
    const saga = await ended(store, 'moved-1');
    expect(saga.status).to.equal('COMPLETED');
    expect(journalB.calls.filter((c) => c === 'run:s')).to.have.length(1);
    expect(journalA.calls).to.have.length(0);
    // Ended: nothing of it is leased any more.
    const row = await poolOf(store).query<{ owner: string | null }>('SELECT owner FROM sagas WHERE request_id = $1', ['moved-1']);
    expect(row.rows[0]).to.exist;
  });

  it("a parked saga's due timer is fired by another live instance, not only by the one that parked it", async () => {
    const store = await instances.store(400);
    const journalA: Journal = { calls: [] };
    const journalB: Journal = { calls: [] };
    // A parks the sagas and stays alive (renewing its leases), but claims nothing: only B can fire the sleeps.
    const a = await quiet.run(store, 'pod-a', sleepFacade(journalA, 300));
    const ids = Array.from({ length: 10 }, (_, i) => `nap-${i}`);
    for (const id of ids) await a.startAsync('Nap', id, { n: 1 });
    await instances.run(store, 'pod-b', sleepFacade(journalB, 300));
    for (const id of ids) expect((await ended(store, id)).status).to.equal('COMPLETED');
    expect(journalB.calls.filter((c) => c === 'run:s')).to.have.length(ids.length);
    expect(journalA.calls).to.have.length(0);
  });
});
