/** The park bench's table: each figure beside its target (issue 17), '-' for a phase not run. */
import type { KillFigures, EventFigures } from './park-load';
import type { ListFigures } from './park-phases';
import type { IdleWrites, TimerFigures } from './park-store';
import type { LatencySummary } from './stats';

export interface ParkResults {
  sagas: number; burst: number; seedS: number;
  idle?: IdleWrites;
  rss?: (number | undefined)[];
  startupMs?: number;
  lists?: ListFigures[];
  scrape?: { latency: LatencySummary; bytes: number };
  events?: EventFigures;
  timers?: { steady: TimerFigures; all: TimerFigures; perS: number; settledS: number | undefined };
  kill?: KillFigures & { leaseTtlS: number };
  dead?: { table: string; live: number; dead: number }[];
}

const f0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(0));
const f1 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(1));
const pct = (l: LatencySummary) => `p50 ${f1(l.p50)} / p99 ${f1(l.p99)} ms`;

export function printParkTable(r: ParkResults): void {
  const rows: [string, string, string][] = [];
  const add = (figure: string, target: string, measured: string) => rows.push([figure, target, measured]);
  add('parked sagas (half waits hours away, half sleeps)', '1,000,000', `${r.sagas} + ${r.burst} burst sleeps (seeded by SQL in ${r.seedS.toFixed(0)} s)`);
  if (r.idle) {
    const parts = r.idle.perS.map((t) => `${t.table} ins ${f1(t.ins)} upd ${f1(t.upd)} (HOT ${f1(t.hot)})`).join('; ');
    add(`store row writes/s, idle ${r.idle.seconds.toFixed(0)} s, all parked`, 'a handful', `${f1(r.idle.total)}/s: ${parts}`);
  }
  if (r.rss) add('RSS per instance, all parked', '<= 200 MB', r.rss.map((m, i) => `#${i} ${f0(m)} MB`).join(', '));
  if (r.startupMs !== undefined) add('start-up with them in the store: spawn → SERVING', '<= 2 s', `${(r.startupMs / 1000).toFixed(2)} s`);
  if (r.events) {
    const e = r.events;
    add(`SendEvent to random waiting sagas (${e.sent} sent)`, 'p50 <= 10, p99 <= 50 ms', `${pct(e.call)}, failures ${e.failures.toString()}`);
    add('SendEvent called → next step started (history)', 'p50 <= 20 ms', `${pct(e.nextStep)} (${e.nextStep.count} sagas)`);
    add('SendEvent called → next step done (history)', '-', `${pct(e.nextDone)}; sagas lost ${e.lost}, credited twice ${e.doubled}`);
  }
  if (r.timers) {
    const t = r.timers;
    add(`timer lateness, ${f0(t.perS)} due/s (before the kill)`, 'p99 <= 100 ms', `p50 ${f0(t.steady.p50)} / p99 ${f0(t.steady.p99)} / max ${f0(t.steady.max)} ms (${t.steady.fired} timers)`);
    add('timer lateness, the whole window', '-', `p50 ${f0(t.all.p50)} / p99 ${f0(t.all.p99)} / max ${f0(t.all.max)} ms (${t.all.fired} timers)`);
    add(`burst: ${r.burst} due in the same second`, 'all fired within 5 s', `${t.all.burstFired} fired, the last ${f1(t.all.burstLastS)} s after the second began`);
    const late = t.settledS === undefined ? ' (still RUNNING at --timeout-s after the window: lost, or that late)' : '';
    add('timers due and not COMPLETED / woken twice', '0 / 0', `${t.all.lost} / ${t.all.doubled}${late}`);
  }
  if (r.kill) {
    const k = r.kill;
    const taken = k.owned === 0 ? 'it owned none at the kill' : k.left > 0 ? `${k.left} of ${k.owned} still its own after ${k.takenS.toFixed(1)} s` : `${k.owned} taken ${k.takenS.toFixed(1)} s after the kill`;
    add('kill -9: its running sagas taken by others', `<= lease TTL + 2 s = ${k.leaseTtlS + 2} s`, taken);
    add('kill -9: restarted one, spawn → SERVING / answers', '<= 2 s', `${(k.servingMs / 1000).toFixed(2)} s / ${(k.answersMs / 1000).toFixed(2)} s`);
  }
  for (const l of r.lists ?? []) add(`ListSagas ${l.label}: first / 10th page`, 'p50 <= 20 ms', `${f1(l.first.p50)} / ${l.tenth ? f1(l.tenth.p50) : '-'} ms`);
  if (r.scrape) add('gauges: GET /metrics', '<= 50 ms', `p50 ${f0(r.scrape.latency.p50)} / max ${f0(r.scrape.latency.max)} ms (${r.scrape.bytes} bytes)`);
  for (const d of r.dead ?? []) add(`dead tuples / live rows, ${d.table}, at the end`, '< 10 %', `${f0(d.dead)} / ${f0(d.live)} = ${d.live > 0 ? ((100 * d.dead) / d.live).toFixed(1) : '-'} %`);

  const w = [0, 1].map((c) => Math.max(...rows.map((row) => row[c].length)));
  console.log('\npark bench (2 instances, Kafka + Postgres)');
  console.log(`${'figure'.padEnd(w[0])}  ${'target'.padEnd(w[1])}  measured`);
  console.log(`${'-'.repeat(w[0])}  ${'-'.repeat(w[1])}  --------`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0])}  ${b.padEnd(w[1])}  ${c}`);
}
