import type { Pool } from 'pg';
import type { Logger } from '../../engine/logger';

/**
 * Server settings without which nothing reclaims the rows every save leaves dead, nor refreshes
 * the planner's statistics: the tables and their indexes then grow for ever, however small the
 * live data (see "Sizing Postgres" in the README). track_counts off stops autovacuum as surely.
 */
const NEEDED = ['autovacuum', 'track_counts'];

/** Warns, one log line per setting, when one of NEEDED is off; a failing check only warns too. */
export async function warnOfMissingUpkeep(pool: Pool, log: Logger): Promise<void> {
  try {
    const { rows } = await pool.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])', [NEEDED]);
    for (const r of rows.filter((row) => row.setting === 'off')) {
      log.warn(`postgres setting ${r.name} is off: dead rows of sagas, saga_steps and saga_events are never vacuumed and the tables keep growing; set ${r.name} = on in postgresql.conf`,
        { setting: r.name, value: r.setting });
    }
  } catch (err) {
    log.warn('could not read the postgres autovacuum settings', { error: err instanceof Error ? err.message : String(err) });
  }
}
