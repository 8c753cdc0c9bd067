import { expect } from 'chai';
import { Pool } from 'pg';
import { silentLogger } from '../../src/engine/logger';
import { Saga } from '../../src/engine/saga';
import { COUNT_BY_STATUS_SQL, COUNT_UNFINISHED_BY_STATUS_SQL, COUNT_UNFINISHED_SQL } from '../../src/store/postgres/gauges';
import { migrate } from '../../src/store/postgres/migrate';
import { MIGRATIONS } from '../../src/store/postgres/migrations';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { freshDatabase } from '../helpers/postgres';
import { fillSagas } from '../helpers/saga-rows';

type Count = { facade: string; version: number; status: string; sagas: number };
const sorted = (rows: Count[]): string[] => rows.map((r) => `${r.facade}@${r.version} ${r.status}: ${r.sagas}`).sort();

/** The counts as a scan of every saga gives them: what the kept counts must equal. */
async function scanned(pool: Pool): Promise<string[]> {
  return sorted((await pool.query<Count>('SELECT facade, version, status, count(*)::int AS sagas FROM sagas GROUP BY 1, 2, 3')).rows);
}

describe('PostgresSagaStore saga counts (kept by the statements that write sagas)', function () {
  this.timeout(120_000);
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresSagaStore;
  let admin: Pool;

  before(async () => {
    db = await freshDatabase();
    store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 6, leaseTtlMs: 60_000, maxBatch: 20 }, silentLogger);
    admin = new Pool({ connectionString: db.dsn, max: 2 });
  });
  after(async () => {
    await store?.close();
    await admin?.end();
    await db?.drop();
  });

  it('stay equal to a count of the sagas through concurrent batched creates and saves on several connections, deletes and a truncate', async () => {
    await admin.query('TRUNCATE saga_events, saga_steps, sagas');
    const N = 600;
    const sagas = await Promise.all(Array.from({ length: N }, async (_, i) => {
      const saga = Saga.start({ requestId: `count-${i}`, facade: ['A', 'B', 'C'][i % 3], version: 1 + (i % 2), mode: 'async', input: {}, steps: ['a'], podId: 'p', owner: 'p/1' });
      saga.saved((await store.create(saga.view())).saga.revision);
      return saga;
    }));
    // Again: a create of an existing request id inserts nothing, and counts nothing.
    await Promise.all(sagas.slice(0, 50).map((s) => store.create(s.view())));
    // Saves in parallel batches: some finish, some fail and compensate, some only advance a step (no count moves).
    await Promise.all(sagas.map(async (saga, i) => {
      saga.stepStarted('a');
      if (i % 4 === 0) { saga.stepSucceeded('a', 1); saga.complete(1); }
      if (i % 4 === 1) { saga.stepFailed('a', 'x'); saga.startCompensating('a', 'x', 'ABORTED'); }
      saga.saved(await store.save(saga.view(), saga.changes()));
    }));
    const want = await scanned(admin);
    expect(want).to.include('A@1 COMPLETED: 50').and.include('C@2 COMPENSATING: 50').and.include('B@2 RUNNING: 50');
    expect(sorted(await store.countByStatus())).to.deep.equal(want);
    const unfinished = (await admin.query<Count>(`SELECT facade, version, count(*)::int AS sagas FROM sagas WHERE status <> 'COMPLETED' GROUP BY 1, 2`)).rows;
    expect((await store.countUnfinished()).map((r) => `${r.facade}@${r.version}: ${r.sagas}`).sort()).to.deep.equal(unfinished.map((r) => `${r.facade}@${r.version}: ${r.sagas}`).sort());
    expect(sorted((await store.gauges(1_000)).sagas)).to.deep.equal(want.filter((w) => !w.includes('COMPLETED')));

    // Writes from outside the store (an operator's SQL, a purge) are counted too.
    await admin.query(`UPDATE sagas SET status = 'COMPENSATED' WHERE status = 'COMPENSATING' AND facade = 'A'`);
    await admin.query(`DELETE FROM sagas WHERE facade = 'B' AND status = 'COMPLETED'`);
    expect(sorted(await store.countByStatus())).to.deep.equal(await scanned(admin));
    await admin.query('TRUNCATE saga_events, saga_steps, sagas');
    expect(await store.countByStatus()).to.deep.equal([]);
    expect(await store.countUnfinished()).to.deep.equal([]);
  });

  it('reads no saga to count them: the statements read saga_counts only', async () => {
    for (const text of [COUNT_BY_STATUS_SQL, COUNT_UNFINISHED_SQL, COUNT_UNFINISHED_BY_STATUS_SQL]) {
      const { rows } = await admin.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`);
      const relations = rows.map((r) => r['QUERY PLAN']).join('\n').match(/ on \w+/g);
      expect(relations, text).to.deep.equal([' on saga_counts']);
    }
  });

  it('counts the sagas of a database migrated from an earlier schema', async () => {
    const old = await freshDatabase();
    const pool = new Pool({ connectionString: old.dsn, max: 1 });
    try {
      await migrate(pool, silentLogger, MIGRATIONS.filter((m) => m.id <= 8));
      await fillSagas(pool, 5_000);
      expect(await migrate(pool, silentLogger)).to.deep.equal(MIGRATIONS.filter((m) => m.id > 8).map((m) => m.id));
      const migrated = await PostgresSagaStore.create({ dsn: old.dsn, poolSize: 1, leaseTtlMs: 10_000 }, silentLogger);
      try {
        const want = await scanned(pool);
        expect(want).to.have.length.above(10);
        expect(sorted(await migrated.countByStatus())).to.deep.equal(want);
        await pool.query(`INSERT INTO sagas (request_id, facade, version, mode, status, lease_expires_at, revision, created_at, updated_at)
                          VALUES ('new-1', 'booking', 1, 'sync', 'RUNNING', now(), 1, now(), now())`);
        expect(sorted(await migrated.countByStatus())).to.deep.equal(await scanned(pool));
      } finally {
        await migrated.close();
      }
    } finally {
      await pool.end();
      await old.drop();
    }
  });
});
