import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../../engine/logger';
import { inTransaction } from './connection';
import { MIGRATIONS, type Migration } from './migrations';

/**
 * Serialises migrate() across every process using the database: held until the transaction ends.
 * An arbitrary constant, unique to this schema.
 */
export const MIGRATION_LOCK_KEY = 7_240_551_338_201;

/**
 * Brings the schema up to date: in one transaction, under an advisory lock, applies in id order
 * the migrations not yet recorded in schema_migrations, and records them. Processes that start
 * together queue on the lock; the later ones find everything applied and do nothing.
 * Returns the ids applied.
 */
export async function migrate(pool: Pool, log: Logger, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return inTransaction(pool, (client) => applyPending(client, log, migrations),
    (err) => log.warn('postgres connection lost during migration', { error: err.message }));
}

async function applyPending(client: PoolClient, log: Logger, migrations: readonly Migration[]): Promise<number[]> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
  await client.query(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      id         integer PRIMARY KEY,
      name       text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  const { rows } = await client.query<{ id: number }>('SELECT id FROM schema_migrations');
  const done = new Set(rows.map((r) => r.id));
  const pending = [...migrations].filter((m) => !done.has(m.id)).sort((a, b) => a.id - b.id);
  for (const m of pending) {
    await client.query(m.sql);
    await client.query('INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, now())', [m.id, m.name]);
    log.info('applied schema migration', { id: m.id, name: m.name });
  }
  return pending.map((m) => m.id);
}
