import { expect } from 'chai';
import { Client, Pool } from 'pg';
import { silentLogger } from '../../src/engine/logger';
import type { SagaFilter } from '../../src/engine/store';
import { indexOnlyPlansConnection } from '../../src/store/postgres/connection';
import { listQuery } from '../../src/store/postgres/listing';
import { migrate } from '../../src/store/postgres/migrate';
import { MIGRATIONS } from '../../src/store/postgres/migrations';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { freshDatabase } from '../helpers/postgres';
import { fillSagas } from '../helpers/saga-rows';

type Filter = Omit<SagaFilter, 'pageToken' | 'pageSize'>;

/** Every combination of the four filters (facade, status, createdFrom, createdTo). */
function combinations(values: Required<Filter>): Filter[] {
  const keys = ['facade', 'status', 'createdFrom', 'createdTo'] as const;
  return Array.from({ length: 16 }, (_, m) => Object.fromEntries(keys.filter((_k, i) => m & (1 << i)).map((k) => [k, values[k]])) as Filter);
}

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Filter?: string; 'Parent Relationship'?: string; Plans?: PlanNode[] }

/** The plan's nodes outside subplans (the steps of each listed saga are a subplan of their own). */
function mainNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).filter((p) => p['Parent Relationship'] !== 'SubPlan').flatMap(mainNodes)];
}

/** The index that serves each combination: its equality columns first, then the keyset's order. */
function expectedIndex(f: Filter): string {
  if (f.facade && f.status) return 'sagas_facade_status_list_idx';
  if (f.facade) return 'sagas_facade_list_idx';
  if (f.status) return 'sagas_status_list_idx';
  return 'sagas_list_idx';
}

describe('PostgresSagaStore list() at scale', function () {
  this.timeout(120_000);
  const ROWS = 30_000;
  const base = Date.UTC(2024, 0, 1);
  const at = (second: number): string => new Date(base + second * 1_000).toISOString();
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresSagaStore;
  let admin: Pool;

  before(async () => {
    db = await freshDatabase();
    store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 2, leaseTtlMs: 10_000 }, silentLogger);
    admin = new Pool({ connectionString: db.dsn, max: 1 });
    await fillSagas(admin, ROWS, base);
  });
  after(async () => {
    await store?.close();
    await admin?.end();
    await db?.drop();
  });

  it('plans every filter combination as one index scan in keyset order: no sequential scan, no sort, no row filtered out', async () => {
    // As the store's connections are set (see indexOnlyPlansConnection), and with the table analysed at 30,000 rows.
    const client = new Client(indexOnlyPlansConnection(db.dsn));
    await client.connect();
    try {
      // A page token is a position in the keyset order: one from the middle of all sagas.
      const token = (await store.list({ pageSize: ROWS / 2 })).nextPageToken;
      expect(token).to.be.a('string');
      for (const f of combinations({ facade: 'refund', status: 'COMPENSATING', createdFrom: at(1_000), createdTo: at(9_000) })) {
        for (const pageToken of [undefined, token]) {
          const q = listQuery({ ...f, pageSize: 50, pageToken });
          const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>({ text: `EXPLAIN (FORMAT JSON) ${q.text}`, values: q.values });
          const nodes = mainNodes(rows[0]['QUERY PLAN'][0].Plan);
          const what = `${JSON.stringify(f)}${pageToken ? ' (a later page)' : ''}: ${nodes.map((n) => n['Node Type']).join(' > ')}`;
          const scans = nodes.filter((n) => n['Relation Name'] === 'sagas');
          expect(scans.map((n) => [n['Node Type'], n['Index Name'], n.Filter]), what).to.deep.equal([['Index Scan', expectedIndex(f), undefined]]);
          expect(nodes.filter((n) => /Sort|Seq Scan/.test(n['Node Type'])), what).to.deep.equal([]);
        }
      }
    } finally {
      await client.end();
    }
  });

  it('pages through every filter combination in order, each saga once', async () => {
    const { rows } = await admin.query<{ request_id: string; facade: string; status: string; created_at: Date }>('SELECT request_id, facade, status, created_at FROM sagas');
    const newestFirst = (a: typeof rows[number], b: typeof rows[number]): number =>
      (b.created_at.getTime() - a.created_at.getTime()) || (a.request_id < b.request_id ? 1 : a.request_id > b.request_id ? -1 : 0);
    const common = combinations({ facade: 'bargain', status: 'RUNNING', createdFrom: at(2_000), createdTo: at(6_000) });
    // The rarest pair: only the combinations with a facade or a status differ from the common ones.
    const rare = combinations({ facade: 'refund', status: 'COMPENSATION_FAILED', createdFrom: at(0), createdTo: at(9_999) }).filter((f) => f.facade || f.status);
    for (const f of [...common, ...rare]) {
      const keep = (r: typeof rows[number]): boolean => (!f.facade || r.facade === f.facade) && (!f.status || r.status === f.status)
        && (!f.createdFrom || r.created_at.getTime() >= Date.parse(f.createdFrom)) && (!f.createdTo || r.created_at.getTime() < Date.parse(f.createdTo));
      const want = rows.filter(keep).sort(newestFirst).map((r) => r.request_id);
      // About 20 pages each: the rarest combination spans a few too.
      const pageSize = Math.max(3, Math.ceil(want.length / 20));
      const seen: string[] = [];
      let pageToken: string | undefined;
      do {
        const page = await store.list({ ...f, pageSize, pageToken });
        if (page.nextPageToken) expect(page.sagas).to.have.length(pageSize);
        seen.push(...page.sagas.map((s) => s.requestId));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(want.length, JSON.stringify(f)).to.be.above(0);
      expect(seen, JSON.stringify(f)).to.deep.equal(want);
    }
  });

  it('migrates a database that holds sagas under the earlier schema, and lists them with the new index', async () => {
    const old = await freshDatabase();
    const pool = new Pool({ connectionString: old.dsn, max: 1 });
    try {
      const earlier = MIGRATIONS.filter((m) => m.id <= 7);
      await migrate(pool, silentLogger, earlier);
      await fillSagas(pool, 3_000, base);
      const applied = await migrate(pool, silentLogger);
      expect(applied).to.deep.equal(MIGRATIONS.filter((m) => m.id > 7).map((m) => m.id));
      const { rows } = await pool.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'sagas' AND indexname = 'sagas_facade_status_list_idx'`);
      expect(rows).to.have.length(1);
      const migrated = await PostgresSagaStore.create({ dsn: old.dsn, poolSize: 1, leaseTtlMs: 10_000 }, silentLogger);
      try {
        const page = await migrated.list({ pageSize: 5, facade: 'refund', status: 'COMPENSATION_FAILED' });
        expect(page.sagas.map((s) => [s.facade, s.status])).to.deep.equal(Array(page.sagas.length).fill(['refund', 'COMPENSATION_FAILED']));
        expect(page.sagas.length).to.be.above(0);
      } finally {
        await migrated.close();
      }
    } finally {
      await pool.end();
      await old.drop();
    }
  });
});
