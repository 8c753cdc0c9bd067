import type { SagaStatus } from '../../engine/saga';
import type { StoreGauges } from '../../engine/store';
import { ACTIVE } from './leases-sql';

// What the metrics scrape and the console's facades page read: counts of sagas, parked visits, timers.

/** Through sagas_status_list_idx, one status at a time. */
export const COUNT_UNFINISHED_SQL = `
SELECT facade, version, count(*)::int AS sagas FROM sagas
 WHERE status IN ('RUNNING', 'COMPENSATING', 'COMPENSATION_FAILED')
 GROUP BY facade, version`;

export const COUNT_BY_STATUS_SQL = 'SELECT facade, version, status, count(*)::int AS sagas FROM sagas GROUP BY facade, version, status';

/**
 * The metrics' gauges in one statement: unfinished sagas (the status index), the parked visits of
 * the running ones (their steps by primary key: the cost grows with unfinished sagas, not with
 * the finished ones), due timers (the wake_at index). Nothing is locked or written. A node's
 * visits are parked one at a time (a loop comes back to it after the last visit ended), so
 * counting visits counts sagas.
 */
export const GAUGES_SQL = `
SELECT 'sagas' AS kind, facade, version, status, NULL AS node, count(*)::int AS n FROM sagas
 WHERE status IN ('RUNNING', 'COMPENSATING', 'COMPENSATION_FAILED') GROUP BY facade, version, status
UNION ALL
SELECT 'parked', s.facade, s.version, st.status, split_part(st.name, '#', 1), count(*)::int
  FROM sagas s JOIN saga_steps st ON st.request_id = s.request_id
 WHERE s.status = 'RUNNING' AND st.status IN ('WAITING', 'RETRYING')
 GROUP BY s.facade, s.version, st.status, split_part(st.name, '#', 1)
UNION ALL
SELECT 'timers', '', 0, '', NULL, count(*)::int FROM sagas WHERE wake_at <= now() AND status IN ${ACTIVE}
UNION ALL
SELECT 'overdue', '', 0, '', NULL, count(*)::int FROM sagas
 WHERE wake_at < now() - $1::double precision * interval '1 millisecond' AND status IN ${ACTIVE}`;

export type GaugeRow = { kind: string; facade: string; version: number; status: string; node: string | null; n: number };

export function toGauges(rows: GaugeRow[]): StoreGauges {
  return {
    sagas: rows.filter((r) => r.kind === 'sagas').map((r) => ({ facade: r.facade, version: r.version, status: r.status as SagaStatus, sagas: r.n })),
    parked: rows.filter((r) => r.kind === 'parked')
      .map((r) => ({ facade: r.facade, version: r.version, node: r.node!, status: r.status as 'WAITING' | 'RETRYING', sagas: r.n })),
    timersDue: rows.find((r) => r.kind === 'timers')?.n ?? 0,
    timersOverdue: rows.find((r) => r.kind === 'overdue')?.n ?? 0,
  };
}
