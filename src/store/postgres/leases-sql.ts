import { SAGA_COLUMNS, STEPS_OF_S, HISTORY_OF_S } from './rows';

/** Leases and claims: which instance holds an unfinished saga, until when (Postgres' clock). */

export const ACTIVE = `('RUNNING', 'COMPENSATING')`;
export const LEASE = (param: string): string => `now() + ${param}::double precision * interval '1 millisecond'`;

/**
 * Renewal takes no row lock it would have to wait for: SKIP LOCKED passes over the rows a save holds
 * at that moment (renewed at the next heartbeat, well within the TTL). Waiting instead, with saves
 * locking several sagas in their own order, deadlocked: Postgres then stalls both for
 * deadlock_timeout (1 s) before breaking the cycle.
 */
export const RENEW_SQL = `
WITH mine AS (
  SELECT request_id FROM sagas
   WHERE owner = $1 AND status IN ${ACTIVE} AND request_id <> ALL($3::text[])
   ORDER BY request_id
   FOR UPDATE SKIP LOCKED
)
UPDATE sagas s SET lease_expires_at = ${LEASE('$2')} FROM mine WHERE s.request_id = mine.request_id`;

/** As renewal: never waits for a row lock (a row a save holds keeps its lease until it lapses). */
export const RELEASE_SQL = `
WITH mine AS (
  SELECT request_id FROM sagas WHERE owner = $1 AND status IN ${ACTIVE} ORDER BY request_id FOR UPDATE SKIP LOCKED
)
UPDATE sagas s SET lease_expires_at = now() - interval '1 millisecond' FROM mine WHERE s.request_id = mine.request_id`;

/**
 * SKIP LOCKED: concurrent claimers pass over each other's rows, so they get disjoint sets. A due
 * timer is its owner's to fire, or anyone's when the saga has no owner (parked, holding no lease:
 * lease_expires_at NULL, which no lapse test matches).
 */
export const CLAIM_SQL = `
WITH due AS (
  SELECT request_id, owner AS former_owner, coalesce(lease_expires_at < now(), false) AS lapsed FROM sagas
   WHERE status IN ${ACTIVE}
     AND (lease_expires_at < now() OR (wake_at <= now() AND (owner = $1 OR owner IS NULL)))
     AND ($4::text[] IS NULL OR facade || '@' || version = ANY($4::text[]))
   LIMIT $2
   FOR UPDATE SKIP LOCKED
), s AS (
  UPDATE sagas u
     SET owner = $1, wake_at = NULL, lease_expires_at = ${LEASE('$3')}, revision = u.revision + 1
    FROM due
   WHERE u.request_id = due.request_id
  RETURNING u.*, due.lapsed, due.former_owner
)
SELECT ${SAGA_COLUMNS}, s.lapsed, s.former_owner, ${STEPS_OF_S}, ${HISTORY_OF_S} FROM s`;
