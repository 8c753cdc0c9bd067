import type { Pool } from 'pg';

export const FACADES = ['booking', 'transfer', 'bargain', 'refund'] as const;
export const STATUSES = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'] as const;

/**
 * `n` saga rows (each with two steps) written by SQL, far faster than through the store: facades
 * and statuses mixed unevenly (the last of each rare), created one a second from `base` with
 * three sagas sharing each second (ties broken by request id), request ids not in creation order.
 * Only what list() and the counts read is realistic.
 */
export async function fillSagas(pool: Pool, n: number, base = Date.UTC(2024, 0, 1)): Promise<void> {
  await pool.query(`
    INSERT INTO sagas (request_id, facade, version, mode, status, input, owner, lease_expires_at, wake_at, revision, created_at, updated_at)
    SELECT md5(i::text), f.facade, 1 + i % 2, 'async', st.status, '{"customer": "c-1"}'::jsonb,
           CASE WHEN st.status IN ('RUNNING', 'COMPENSATING') THEN 'pod-a' END, now() + interval '1 hour',
           NULL, 1, to_timestamp($2::double precision / 1000) + (i / 3) * interval '1 second',
           to_timestamp($2::double precision / 1000) + (i / 3) * interval '1 second'
      FROM generate_series(1, $1::int) i,
           LATERAL (SELECT CASE WHEN i % 100 < 50 THEN 'booking' WHEN i % 100 < 80 THEN 'transfer' WHEN i % 100 < 98 THEN 'bargain' ELSE 'refund' END AS facade) f,
           LATERAL (SELECT CASE WHEN (i / 7) % 100 < 60 THEN 'COMPLETED' WHEN (i / 7) % 100 < 85 THEN 'RUNNING' WHEN (i / 7) % 100 < 95 THEN 'COMPENSATED'
                                WHEN (i / 7) % 100 < 97 THEN 'COMPENSATING' ELSE 'COMPENSATION_FAILED' END AS status) st`, [n, base]);
  await pool.query(`
    INSERT INTO saga_steps (request_id, position, name, status, attempts, compensation_attempts)
    SELECT s.request_id, p, (ARRAY['reserve#1', 'wait#1'])[p + 1], CASE WHEN s.status = 'RUNNING' AND p = 1 THEN 'WAITING' ELSE 'SUCCEEDED' END, 1, 0
      FROM sagas s, generate_series(0, 1) p`);
  await pool.query('ANALYZE sagas; ANALYZE saga_steps');
}
