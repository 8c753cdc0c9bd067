import type { Pool } from 'pg';
import type { StoreMetrics } from '../../engine/metrics';
import type { PurgeBatch, PurgeResult } from '../../engine/store';
import { inTransaction } from './connection';

/**
 * Retention on Postgres: finished sagas (COMPLETED, COMPENSATED) and their steps and events are
 * deleted in small batches, each in a transaction of its own under a store-wide advisory lock, so
 * that one instance purges at a time and a batch holds its rows only for a moment.
 * COMPENSATION_FAILED sagas are kept: an operator has to see them (RetryCompensation).
 */

/** The advisory lock of retention (single-key form: apart from the migration lock and the pod id locks). */
export const RETENTION_LOCK_KEY = 7_240_551_338_202;

/** Spelled exactly as in the partial index sagas_finished_idx, so that the planner matches it. */
const FINISHED = `status IN ('COMPLETED', 'COMPENSATED')`;

/**
 * The facades with a finished saga, one index probe each (a loose scan of sagas_finished_idx): a
 * handful of facades, whatever the number of sagas.
 */
const FINISHED_FACADES_SQL = `
WITH RECURSIVE f AS (
  (SELECT facade FROM sagas WHERE ${FINISHED} ORDER BY facade LIMIT 1)
  UNION ALL
  SELECT (SELECT s.facade FROM sagas s WHERE s.${FINISHED} AND s.facade > f.facade ORDER BY s.facade LIMIT 1)
    FROM f WHERE f.facade IS NOT NULL
)
SELECT facade FROM f WHERE facade IS NOT NULL`;

/**
 * One batch: the oldest finished sagas of a facade past its cutoff, after the previous batch's last
 * (keyset on sagas_finished_idx: rows deleted by earlier batches, dead until vacuumed, are not
 * walked again). SKIP LOCKED: a row a save holds is left to the next pass, never waited for. The
 * status is checked again on the locked row (a saga moved on since the scan is no victim).
 * Steps and events are found by their primary keys.
 */
const PURGE_SQL = `
WITH victims AS (
  SELECT request_id, finished_at FROM sagas
   WHERE ${FINISHED} AND facade = $1 AND finished_at < $2::timestamptz
     AND (finished_at, request_id) > ($3::timestamptz, $4::text COLLATE "C")
   ORDER BY finished_at, request_id
   LIMIT $5
   FOR UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM sagas s USING victims v WHERE s.request_id = v.request_id AND s.${FINISHED} RETURNING s.request_id
), steps AS (
  DELETE FROM saga_steps t USING gone g WHERE t.request_id = g.request_id
), events AS (
  DELETE FROM saga_events e USING gone g WHERE e.request_id = g.request_id
), last AS (
  SELECT finished_at::text AS finished_at, request_id FROM victims ORDER BY finished_at DESC, request_id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM victims)::int AS taken,
       last.finished_at, last.request_id
  FROM (SELECT 1) one LEFT JOIN last ON true`;

export function finishedFacades(pool: Pool, metrics?: StoreMetrics): Promise<string[]> {
  return timed('finishedFacades', metrics, async () => {
    const { rows } = await pool.query<{ facade: string }>({ name: 'finished_facades', text: FINISHED_FACADES_SQL });
    return rows.map((r) => r.facade);
  });
}

/** One batch in its own transaction; undefined when another session holds the retention lock. */
export function purgeFinished(pool: Pool, batch: PurgeBatch, metrics?: StoreMetrics): Promise<PurgeResult | undefined> {
  return timed('purgeFinished', metrics, () => purgeBatch(pool, batch));
}

async function timed<T>(what: string, metrics: StoreMetrics | undefined, run: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  let ok = false;
  try {
    const result = await run();
    ok = true;
    return result;
  } finally {
    metrics?.operation(what, Number(process.hrtime.bigint() - started) / 1e9, ok);
  }
}

async function purgeBatch(pool: Pool, batch: PurgeBatch): Promise<PurgeResult | undefined> {
  return inTransaction(pool, async (client) => {
    const { rows: [lock] } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [RETENTION_LOCK_KEY]);
    if (!lock.locked) return undefined;
    type Row = { deleted: number; taken: number; finished_at: string | null; request_id: string | null };
    const { rows: [row] } = await client.query<Row>({
      name: 'purge_finished',
      text: PURGE_SQL,
      values: [batch.facade, batch.before.toISOString(), batch.after?.finishedAt ?? '-infinity', batch.after?.requestId ?? '', batch.limit],
    });
    return {
      deleted: row.deleted,
      taken: row.taken,
      last: row.finished_at !== null && row.request_id !== null ? { finishedAt: row.finished_at, requestId: row.request_id } : batch.after,
    };
  });
}
