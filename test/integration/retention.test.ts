import { expect } from 'chai';
import { Client } from 'pg';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { Retention, type RetentionOptions } from '../../src/engine/retention';
import { Saga, type SagaSnapshot, type SagaStatus } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import { MemorySagaStore } from '../../src/store/memory-store';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { RETENTION_LOCK_KEY } from '../../src/store/postgres/retention';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { fakeFacade, fakeStep } from '../helpers/fake-facade';
import { FAKE_TOPICS } from '../helpers/instances';
import { freshDatabase } from '../helpers/postgres';

const DAY = 86_400_000;
const OPTIONS: RetentionOptions = { retentionMs: 7 * DAY, intervalMs: 60_000, batch: 500, pauseMs: 1 };

/** A saga of `facade` stored RUNNING, then saved in `status` as it would end, `ageMs` ago: steps and history as the engine writes them. */
async function stored(store: SagaStore, requestId: string, status: SagaStatus, ageMs: number, facade = 'Booking'): Promise<void> {
  const saga = Saga.start({ requestId, facade, version: 1, mode: 'async', input: { n: 1 }, steps: ['a', 'b'], podId: 'pod-a' });
  await store.create(saga.snapshot());
  const at = new Date(Date.now() - ageMs).toISOString();
  const seq = saga.snapshot().history.at(-1)!.seq + 1;
  const snapshot: SagaSnapshot = {
    ...saga.snapshot(),
    revision: 1,
    status,
    updatedAt: at,
    steps: saga.snapshot().steps.map((s) => ({ ...s, status: 'SUCCEEDED', attempts: 1, output: { ok: s.name } })),
    history: [...saga.snapshot().history, { seq, at, type: 'STEP_SUCCEEDED', step: 'a' }, { seq: seq + 1, at, type: `SAGA_${status}` }],
  };
  await store.save(snapshot, { storedEvents: 1, steps: new Set(['a', 'b']) });
}

async function present(store: SagaStore, ids: string[]): Promise<string[]> {
  const found = await Promise.all(ids.map((id) => store.get(id)));
  return ids.filter((_, i) => found[i] !== undefined);
}

interface Backend {
  name: string;
  store(): Promise<SagaStore>;
  /** Rows left in saga_steps and saga_events (Postgres only). */
  leftovers?(): Promise<{ steps: number; events: number }>;
}

const closers: (() => Promise<void>)[] = [];
let dsn = '';

const BACKENDS: Backend[] = [
  { name: 'memory store', store: async () => new MemorySagaStore() },
  {
    name: 'Postgres store',
    async store() {
      const db = await freshDatabase();
      dsn = db.dsn;
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 4, leaseTtlMs: 10_000 }, silentLogger);
      closers.push(async () => { await store.close(); await db.drop(); });
      return store;
    },
    async leftovers() {
      const client = new Client({ connectionString: dsn });
      await client.connect();
      try {
        const { rows: [r] } = await client.query<{ steps: number; events: number }>(
          'SELECT (SELECT count(*) FROM saga_steps)::int AS steps, (SELECT count(*) FROM saga_events)::int AS events');
        return r;
      } finally {
        await client.end();
      }
    },
  },
];

for (const backend of BACKENDS) {
  describe(`retention (${backend.name})`, function () {
    this.timeout(120_000);
    let store: SagaStore;
    beforeEach(async () => { store = await backend.store(); });
    afterEach(async () => { for (const close of closers.splice(0).reverse()) await close(); });

    it('deletes finished sagas (and their steps and events) past the retention, and not before', async () => {
      await stored(store, 'old-done', 'COMPLETED', 8 * DAY);
      await stored(store, 'old-undone', 'COMPENSATED', 7 * DAY + 60_000);
      await stored(store, 'young-done', 'COMPLETED', 6 * DAY);
      await stored(store, 'just-done', 'COMPENSATED', 0);
      const retention = new Retention(store, () => undefined, OPTIONS, silentLogger);
      expect(await retention.pass()).to.deep.equal({ deleted: 2, busy: false });
      expect(await present(store, ['old-done', 'old-undone', 'young-done', 'just-done'])).to.deep.equal(['young-done', 'just-done']);
      // Two sagas left, two steps and three events each.
      if (backend.leftovers) expect(await backend.leftovers()).to.deep.equal({ steps: 4, events: 6 });
      // A day (and a second, so a pass in the same millisecond as the save is not at the edge) later, the younger one is past it too.
      expect(await retention.pass(Date.now() + DAY + 1_000)).to.deep.equal({ deleted: 1, busy: false });
      expect(await present(store, ['young-done', 'just-done'])).to.deep.equal(['just-done']);
    });

    it('never deletes an unfinished saga, however old: RUNNING, COMPENSATING, COMPENSATION_FAILED', async () => {
      await stored(store, 'running', 'RUNNING', 30 * DAY);
      await stored(store, 'compensating', 'COMPENSATING', 30 * DAY);
      await stored(store, 'failed-undo', 'COMPENSATION_FAILED', 30 * DAY);
      await stored(store, 'done', 'COMPLETED', 30 * DAY);
      const retention = new Retention(store, () => undefined, OPTIONS, silentLogger);
      expect(await retention.pass()).to.deep.equal({ deleted: 1, busy: false });
      expect(await present(store, ['running', 'compensating', 'failed-undo', 'done'])).to.deep.equal(['running', 'compensating', 'failed-undo']);
    });

    it('a facade may keep its finished sagas shorter, longer, or forever (0); saga.retentionMs 0 keeps the others forever', async () => {
      await stored(store, 'short-2h', 'COMPLETED', 2 * 3_600_000, 'Short');
      await stored(store, 'short-10m', 'COMPLETED', 600_000, 'Short');
      await stored(store, 'default-2h', 'COMPLETED', 2 * 3_600_000, 'Booking');
      await stored(store, 'long-8d', 'COMPLETED', 8 * DAY, 'Long');
      await stored(store, 'forever-1y', 'COMPENSATED', 365 * DAY, 'Forever');
      const own: Record<string, number> = { Short: 3_600_000, Long: 30 * DAY, Forever: 0 };
      const retention = new Retention(store, (facade) => own[facade], OPTIONS, silentLogger);
      expect(await retention.pass()).to.deep.equal({ deleted: 1, busy: false });
      expect(await present(store, ['short-2h', 'short-10m', 'default-2h', 'long-8d', 'forever-1y'])).to.deep.equal(['short-10m', 'default-2h', 'long-8d', 'forever-1y']);
      await stored(store, 'default-1y', 'COMPLETED', 365 * DAY, 'Booking');
      const keepAll = new Retention(store, (facade) => own[facade], { ...OPTIONS, retentionMs: 0 }, silentLogger);
      expect(await keepAll.pass(Date.now() + 31 * DAY)).to.deep.equal({ deleted: 2, busy: false }); // Short and Long only
      expect(await present(store, ['default-2h', 'default-1y', 'forever-1y'])).to.deep.equal(['default-2h', 'default-1y', 'forever-1y']);
    });

    it('goes through many batches, oldest first, and an orchestrator names the retention when a saga is gone', async () => {
      const n = 1_234;
      for (let i = 0; i < n; i += 100) {
        await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => stored(store, `bulk-${i + j}`, 'COMPLETED', 8 * DAY + (i + j) * 1_000)));
      }
      const registry = new FacadeRegistry().register(fakeFacade('Booking', 'sync', [fakeStep('a', { calls: [] })], 'rb.sync'));
      const orchestrator = new Orchestrator({
        registry, store, transport: new MemoryTransport(FAKE_TOPICS, silentLogger), logger: silentLogger, podId: 'p', outcomeTopic: 'outcomes',
        options: { retentionBatch: 100, retentionPauseMs: 1 },
      });
      await orchestrator.start();
      try {
        expect(await orchestrator.purgeFinished()).to.deep.equal({ deleted: n, busy: false });
                expect(await orchestrator.getSaga('bulk-0')).to.equal(undefined);
        const err = orchestrator.sagaNotFound('bulk-0') as Error & { code: string };
        expect([err.code, err.message]).to.deep.equal(['NOT_FOUND', 'saga bulk-0 not found: finished sagas are deleted after saga.retentionMs (7d, unless its facade sets its own)']);
        // Moving a deleted saga on says the same.
        const moved = await orchestrator.sendEvent('bulk-1', 'go', {}).then(() => undefined, (e: Error) => e.message);
        expect(moved).to.equal('saga bulk-1 not found: finished sagas are deleted after saga.retentionMs (7d, unless its facade sets its own)');
      } finally {
        orchestrator.stop();
      }
      if (backend.leftovers) expect(await backend.leftovers()).to.deep.equal({ steps: 0, events: 0 });
    });
  });
}

describe('retention on Postgres with two instances', function () {
  this.timeout(180_000);
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const stores: PostgresSagaStore[] = [];
  before(async () => {
    db = await freshDatabase();
    for (let i = 0; i < 2; i++) stores.push(await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 4, leaseTtlMs: 10_000 }, silentLogger));
  });
  after(async () => {
    for (const s of stores.splice(0)) await s.close();
    await db?.drop();
  });

  it('while one holds the retention lock, the other purges nothing and says so', async () => {
    await stored(stores[0], 'locked-out', 'COMPLETED', 8 * DAY);
    const holder = new Client({ connectionString: db.dsn });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [RETENTION_LOCK_KEY]);
      expect(await new Retention(stores[1], () => undefined, OPTIONS, silentLogger).pass()).to.deep.equal({ deleted: 0, busy: true });
      expect(await present(stores[1], ['locked-out'])).to.deep.equal(['locked-out']);
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect(await new Retention(stores[1], () => undefined, OPTIONS, silentLogger).pass()).to.deep.equal({ deleted: 1, busy: false });
  });

  it('two instances purging at once, beside live saves, delete each saga once, without deadlock or error', async () => {
    const n = 3_000;
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => stored(stores[(i + j) % 2], `dup-${i + j}`, (i + j) % 3 ? 'COMPLETED' : 'COMPENSATED', 8 * DAY + j)));
    }
    const live = Array.from({ length: 20 }, (_, i) => Saga.start({ requestId: `live-${i}`, facade: 'Booking', version: 1, mode: 'async', input: {}, steps: ['a'], podId: 'pod-a' }).snapshot());
    for (const s of live) await stores[0].create(s);
    let stop = false;
    let saves = 0;
    // The live path: each live saga saved again and again (revision-fenced) on both stores while the purge runs.
    const writer = (async () => {
      const revisions = new Map(live.map((s) => [s.requestId, 1]));
      while (!stop) {
        await Promise.all(live.map(async (s, i) => {
          const revision = revisions.get(s.requestId)!;
          revisions.set(s.requestId, await stores[i % 2].save({ ...s, revision, updatedAt: new Date().toISOString() }));
          saves++;
        }));
      }
    })();
    const batches = { ...OPTIONS, batch: 50 };
    const passes = stores.map((store) => new Retention(store, () => undefined, batches, silentLogger));
    const results: { deleted: number; busy: boolean }[] = [];
    for (;;) {
      const round = await Promise.all(passes.map((r) => r.pass()));
      results.push(...round);
      if (round.every((r) => r.deleted === 0 && !r.busy)) break;
    }
    stop = true;
    await writer;
    expect(results.reduce((sum, r) => sum + r.deleted, 0)).to.equal(n);
    expect(await present(stores[0], ['dup-0', 'dup-1', `dup-${n - 1}`])).to.deep.equal([]);
    expect((await present(stores[1], live.map((s) => s.requestId))).length).to.equal(live.length);
    expect(saves).to.be.greaterThan(0);
  });
});
