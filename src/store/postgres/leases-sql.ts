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
 *
 * Lapsed leases and due timers are taken by two ordered index scans, oldest first, each stopping
 * at its LIMIT. One condition with an OR was planned as a bitmap of every due row, read in heap
 * order: with a backlog (833 timers due a second over 1,000,000 parked sagas) each pass built a
 * bitmap of the whole backlog to take 100 of it, in no order, and some timers waited 9 minutes.
 * The second scan leaves out the lapsed ones: rows this transaction locked in the first are not
 * locked to itself, and would be taken twice.
 */
export const CLAIM_SQL = `
WITH lapsed AS (
  SELECT request_id, owner AS former_owner, true AS lapsed FROM sagas
   WHERE status IN ${ACTIVE} AND lease_expires_at < now()
     AND ($4::text[] IS NULL OR facade || '@' || version = ANY($4::text[]))
   ORDER BY lease_expires_at
   LIMIT $2
   FOR UPDATE SKIP LOCKED
), timers AS (
  SELECT request_id, owner AS former_owner, false AS lapsed FROM sagas
   WHERE wake_at <= now() AND status IN ${ACTIVE} AND (owner = $1 OR owner IS NULL)
     AND (lease_expires_at IS NULL OR lease_expires_at >= now())
     AND ($4::text[] IS NULL OR facade || '@' || version = ANY($4::text[]))
   ORDER BY wake_at
   LIMIT $2 - (SELECT count(*) FROM lapsed)
   FOR UPDATE SKIP LOCKED
), due AS (
  SELECT * FROM lapsed UNION ALL SELECT * FROM timers
), s AS (
  UPDATE sagas u
     SET owner = $1, wake_at = NULL, lease_expires_at = ${LEASE('$3')}, revision = u.revision + 1
    FROM due
   WHERE u.request_id = due.request_id
  RETURNING u.*, due.lapsed, due.former_owner
)
SELECT ${SAGA_COLUMNS}, s.lapsed, s.former_owner, ${STEPS_OF_S}, ${HISTORY_OF_S} FROM s`;
