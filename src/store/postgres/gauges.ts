import type { SagaStatus } from '../../engine/saga';
import type { StoreGauges } from '../../engine/store';
import { ACTIVE } from './leases-sql';

// What the metrics scrape and the console's facades page read: counts of sagas, parked visits, timers.

const UNFINISHED = `('RUNNING', 'COMPENSATING', 'COMPENSATION_FAILED')`;

/**
 * Saga counts, by status (the status index, one status at a time): the unfinished ones grow with
 * the sagas parked, every status with the retention. Counters kept by a trigger on sagas would
 * make them cheap to read, at the price of a trigger on every save of the hot path: instead the
 * gauges and the console's facades page read them through a BackgroundRead.
 */
export const COUNT_UNFINISHED_SQL = `
SELECT facade, version, count(*)::int AS sagas FROM sagas
 WHERE status IN ${UNFINISHED}
 GROUP BY facade, version`;

export const COUNT_BY_STATUS_SQL = 'SELECT facade, version, status, count(*)::int AS sagas FROM sagas GROUP BY facade, version, status';

export const COUNT_UNFINISHED_BY_STATUS_SQL = `
SELECT facade, version, status, count(*)::int AS sagas FROM sagas
 WHERE status IN ${UNFINISHED}
 GROUP BY facade, version, status`;

/**
 * The other gauges, in one statement: the parked visits of the running
 * sagas (their steps by primary key: the cost grows with unfinished sagas, not with the finished
 * ones), due timers (the wake_at index). Nothing is locked or written. A node's visits are parked
 * one at a time (a loop comes back to it after the last visit ended), so counting visits counts
 * sagas. Seconds at 1,000,000 parked sagas: read through a BackgroundRead.
 */
export const PARKED_AND_TIMERS_SQL = `
SELECT 'parked' AS kind, s.facade, s.version, st.status, split_part(st.name, '#', 1) AS node, count(*)::int AS n
  FROM sagas s JOIN saga_steps st ON st.request_id = s.request_id
 WHERE s.status = 'RUNNING' AND st.status IN ('WAITING', 'RETRYING')
 GROUP BY s.facade, s.version, st.status, split_part(st.name, '#', 1)
UNION ALL
SELECT 'timers', '', 0, '', NULL, count(*)::int FROM sagas WHERE wake_at <= now() AND status IN ${ACTIVE}
UNION ALL
SELECT 'overdue', '', 0, '', NULL, count(*)::int FROM sagas
 WHERE wake_at < now() - $1::double precision * interval '1 millisecond' AND status IN ${ACTIVE}`;

export type GaugeRow = { kind: string; facade: string; version: number; status: string; node: string | null; n: number };
export type CountRow = { facade: string; version: number; status: SagaStatus; sagas: number };

export function toGauges(counts: CountRow[], rows: GaugeRow[]): StoreGauges {
  return {
    sagas: counts,
    parked: rows.filter((r) => r.kind === 'parked')
      .map((r) => ({ facade: r.facade, version: r.version, node: r.node!, status: r.status as 'WAITING' | 'RETRYING', sagas: r.n })),
    timersDue: rows.find((r) => r.kind === 'timers')?.n ?? 0,
    timersOverdue: rows.find((r) => r.kind === 'overdue')?.n ?? 0,
  };
}

/**
 * A read too costly to run on every call, served from its last result. A call that finds that
 * result older than the refresh interval starts a new read in the background and returns the
 * last result at once: only the first call (and the first with another key) waits. The interval is
 * `minAgeMs`, or ten times the last read's duration when that is longer, so that the read keeps at
 * most a tenth of one connection busy (at 1,000,000 parked sagas, a result may be minutes old).
 */
export class BackgroundRead<K, T> {
  private last?: { key: K; at: number; tookMs: number; value: T };
  private reading?: { key: K; promise: Promise<T> };

  constructor(private readonly read: (key: K) => Promise<T>, private readonly minAgeMs: number, private readonly onError: (err: unknown) => void) {}

  async get(key: K): Promise<T> {
    const last = this.last;
    if (!last || last.key !== key) return this.refresh(key);
    if (Date.now() - last.at >= Math.max(this.minAgeMs, 10 * last.tookMs)) this.refresh(key).catch(this.onError);
    return last.value;
  }

  private refresh(key: K): Promise<T> {
    if (this.reading?.key === key) return this.reading.promise;
    const started = Date.now();
    const reading = {
      key,
      promise: this.read(key).then((value) => {
        this.last = { key, at: Date.now(), tookMs: Date.now() - started, value };
        return value;
      }).finally(() => { if (this.reading === reading) this.reading = undefined; }),
    };
    this.reading = reading;
    return reading.promise;
  }
}
