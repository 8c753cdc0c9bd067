import { expect } from 'chai';
import { Pool } from 'pg';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { freshDatabase, ThrowawayPostgres } from '../helpers/postgres';

/** A logger that keeps its warnings. */
function recording(): { log: Logger; warnings: { message: string; meta?: Record<string, unknown> }[] } {
  const warnings: { message: string; meta?: Record<string, unknown> }[] = [];
  const log: Logger = { ...silentLogger, warn: (message, meta) => warnings.push({ message, meta }), child: () => log };
  return { log, warnings };
}

const aboutUpkeep = (w: { meta?: Record<string, unknown> }): boolean => w.meta?.setting === 'autovacuum' || w.meta?.setting === 'track_counts';

describe('PostgresSagaStore upkeep', function () {
  this.timeout(120_000);

  it('warns once at start-up, naming the setting, when the server runs without autovacuum', async () => {
    const db = await freshDatabase();
    const pool = new Pool({ connectionString: db.dsn, max: 1 });
    try {
      const autovacuum = (await pool.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0].autovacuum;
      const { log, warnings } = recording();
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 1, leaseTtlMs: 10_000 }, log);
      await store.close();
      // The shared test server runs with autovacuum off (as this machine's does); should it be on, no warning is due.
      const want = autovacuum === 'off' ? [{ setting: 'autovacuum', value: 'off' }] : [];
      expect(warnings.filter(aboutUpkeep).map((w) => w.meta)).to.deep.equal(want);
      for (const w of warnings.filter(aboutUpkeep)) expect(w.message).to.match(/^postgres setting autovacuum is off/);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it('does not warn on a server with autovacuum on (the default)', async () => {
    const server = new ThrowawayPostgres();
    try {
      await server.start();
      const { log, warnings } = recording();
      const store = await PostgresSagaStore.create({ dsn: server.dsn, poolSize: 1, leaseTtlMs: 10_000 }, log);
      await store.close();
      expect(warnings.filter(aboutUpkeep)).to.deep.equal([]);
    } finally {
      await server.destroy();
    }
  });

  it('sets room for HOT updates and per-table autovacuum thresholds on the hot tables', async () => {
    const db = await freshDatabase();
    const pool = new Pool({ connectionString: db.dsn, max: 1 });
    try {
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 1, leaseTtlMs: 10_000 }, silentLogger);
      await store.close();
      const { rows } = await pool.query<{ relname: string; reloptions: string[] }>(
        `SELECT relname, reloptions FROM pg_class WHERE relname IN ('sagas', 'saga_steps', 'saga_events') ORDER BY relname`);
      const options = Object.fromEntries(rows.map((r) => [r.relname, Object.fromEntries(r.reloptions.map((o) => o.split('=')))]));
      for (const table of ['sagas', 'saga_steps']) {
        expect(options[table], table).to.include({ fillfactor: '70', autovacuum_vacuum_scale_factor: '0.02', autovacuum_vacuum_insert_scale_factor: '0.05', autovacuum_analyze_scale_factor: '0.02' });
      }
      expect(options.saga_events).to.include({ fillfactor: '100', autovacuum_vacuum_insert_scale_factor: '0.05', autovacuum_analyze_scale_factor: '0.05' });
    } finally {
      await pool.end();
      await db.drop();
    }
  });
});
