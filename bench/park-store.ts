/**
 * What the park bench reads from Postgres itself (bench/park.ts): row writes to the hot tables
 * (pg_stat_user_tables), dead tuples, and the timers' record in the sagas' history.
 */
import type { Client } from 'pg';
import type { Seeded } from './park-seed';

const HOT_TABLES = ['sagas', 'saga_steps'];

interface TableStats { table: string; ins: number; upd: number; hot: number; del: number; live: number; dead: number }

/**
 * Cumulative counters of the tables. A backend reports its counts when a transaction ends (at most
 * once a second) or after 10 s idle: a window of a minute is off by a few seconds' writes at most.
 */
export async function tableStats(db: Client, tables = HOT_TABLES): Promise<TableStats[]> {
  const { rows } = await db.query<TableStats>(`
    SELECT relname AS table, n_tup_ins::float8 AS ins, n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot, n_tup_del::float8 AS del,
           n_live_tup::float8 AS live, n_dead_tup::float8 AS dead
      FROM pg_stat_user_tables WHERE relname = ANY($1) ORDER BY relname`, [tables]);
  return rows;
}

export interface IdleWrites { seconds: number; perS: { table: string; ins: number; upd: number; hot: number }[]; total: number }

/** Row writes (inserts + updates, of which HOT) per second to sagas and saga_steps over `seconds`, with no traffic. */
export async function idleWrites(db: Client, seconds: number): Promise<IdleWrites> {
  // The seeding's own counts first (this backend reports them at its next report), so that they fall before the window.
  await db.query('SELECT pg_stat_force_next_flush()');
  await db.query('SELECT 1');
  await new Promise((r) => setTimeout(r, 2_000));
  await db.query('SELECT pg_stat_clear_snapshot()');
  const before = await tableStats(db);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await db.query('SELECT pg_stat_clear_snapshot()');
  const after = await tableStats(db);
  const s = (Date.now() - t0) / 1000;
  const perS = after.map((a) => {
    const b = before.find((x) => x.table === a.table)!;
    return { table: a.table, ins: (a.ins - b.ins) / s, upd: (a.upd - b.upd) / s, hot: (a.hot - b.hot) / s };
  });
  return { seconds: s, perS, total: perS.reduce((n, t) => n + t.ins + t.upd, 0) };
}

export async function deadTuples(db: Client): Promise<{ table: string; live: number; dead: number }[]> {
  await db.query('SELECT pg_stat_clear_snapshot()');
  return (await tableStats(db)).map((t) => ({ table: t.table, live: t.live, dead: t.dead }));
}

export interface TimerFigures {
  /** Regular sleeps due in the steady range that fired: lateness (fired − due) in ms. */
  fired: number; p50: number; p99: number; max: number;
  /** The burst: how many fired, and the last one's firing after the burst's second began. */
  burstFired: number; burstLastS: number | undefined;
  /** Due by `dueBefore` and not COMPLETED; woken more than once (the sleep succeeded twice). */
  lost: number; doubled: number;
}

/**
 * From the history: a clone's parking entry says `until <due>`, its STEP_SUCCEEDED says when the
 * sleep ended. Counted for the sleeps due before `dueBefore` (ms since the epoch).
 */
export async function timerFigures(db: Client, s: Seeded, dueBefore: number, steady: [from: number, to: number]): Promise<TimerFigures> {
  const sql = `
    WITH w AS (
      SELECT request_id, substring(detail from 'until (\\S+)$')::timestamptz AS due FROM saga_events
       WHERE request_id LIKE $1 AND type = 'STEP_WAITING' AND step = 'sleep'
    ), f AS (
      SELECT request_id, min(at) AS fired, count(*)::int AS n FROM saga_events
       WHERE request_id LIKE $1 AND type = 'STEP_SUCCEEDED' AND step = 'sleep' GROUP BY request_id
    )
    SELECT count(f.fired)::int AS fired,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY (extract(epoch FROM f.fired - w.due) * 1000)::float8) AS p50,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY (extract(epoch FROM f.fired - w.due) * 1000)::float8) AS p99,
           max((extract(epoch FROM f.fired - w.due) * 1000)::float8) AS max,
           max(f.fired) AS last_fired,
           count(*) FILTER (WHERE f.n > 1)::int AS doubled
      FROM w JOIN f USING (request_id) WHERE w.due >= $2 AND w.due < $3`;
  type Row = { fired: number; p50: number | null; p99: number | null; max: number | null; last_fired: Date | null; doubled: number };
  const regular = (await db.query<Row>(sql, [`${s.sleepPrefix}%`, new Date(steady[0]), new Date(steady[1])])).rows[0];
  const burst = (await db.query<Row>(sql, [`${s.burstPrefix}%`, new Date(0), new Date(8.64e15)])).rows[0];
  const lost = await sleepsUnfinished(db, s, dueBefore);
  return {
    fired: regular.fired, p50: regular.p50 ?? NaN, p99: regular.p99 ?? NaN, max: regular.max ?? NaN,
    burstFired: burst.fired, burstLastS: burst.last_fired ? (burst.last_fired.getTime() - s.burstAt) / 1000 : undefined,
    lost, doubled: regular.doubled + burst.doubled,
  };
}

/** Sleep clones due before `dueBefore` (by their parking entry) and not COMPLETED. */
export async function sleepsUnfinished(db: Client, s: Seeded, dueBefore: number): Promise<number> {
  let n = 0;
  for (const prefix of [s.sleepPrefix, s.burstPrefix]) {
    n += (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM saga_events e JOIN sagas s ON s.request_id = e.request_id
      WHERE e.request_id LIKE $1 AND e.type = 'STEP_WAITING' AND e.step = 'sleep'
        AND substring(e.detail from 'until (\\S+)$')::timestamptz < $2 AND s.status <> 'COMPLETED'`, [`${prefix}%`, new Date(dueBefore)])).rows[0].n;
  }
  return n;
}
