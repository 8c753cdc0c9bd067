/** The park bench's flags (bench/park.ts): how many sagas, which phases, and their sizes. */

export const PARK_USAGE = `usage: node dist/bench/park.js [--sagas N] [flags]
  --sagas N            parked sagas, half on a Transfer webhook wait hours away, half on a ParkSleep (default 1000000)
  --templates N        real sagas of each shape started through gRPC per instance, then cloned by SQL (default 2)
  --batch N            clones inserted per statement (default 20000)
  --idle-s S           the idle minute: store row writes/s with everything parked (default 60)
  --window-s S         the sleeps come due over this many seconds (default 600)
  --burst N            more sleeps, all due in one second (default 10000)
  --lead-s S           sleeps start coming due this long after seeding, for the phases before (default 240)
  --events-per-s N     SendEvent rate to random waiting sagas (default 200)
  --events-s S         for this long, from the start of the window (default 30)
  --kill-at-s S        kill -9 of instance 1 this long into the window, restarted at once (default 60)
  --list-calls N       ListSagas calls per filter and page (default 10)
  --scrapes N          GET /metrics scrapes (default 5)
  --timeout-s S        how long to wait for anything to settle (default 300)
  --no-idle --no-rss --no-startup --no-list --no-events --no-timers --no-kill --no-dead   skip that phase`;

export interface ParkOptions {
  sagas: number; templates: number; batch: number; idleS: number; windowS: number; burst: number; leadS: number;
  eventsPerS: number; eventsS: number; killAtS: number; listCalls: number; scrapes: number; timeoutS: number;
  idle: boolean; rss: boolean; startup: boolean; list: boolean; events: boolean; timers: boolean; kill: boolean; dead: boolean;
}

const NUMBERS: Record<string, keyof ParkOptions> = {
  '--sagas': 'sagas', '--templates': 'templates', '--batch': 'batch', '--idle-s': 'idleS', '--window-s': 'windowS', '--burst': 'burst',
  '--lead-s': 'leadS', '--events-per-s': 'eventsPerS', '--events-s': 'eventsS', '--kill-at-s': 'killAtS', '--list-calls': 'listCalls',
  '--scrapes': 'scrapes', '--timeout-s': 'timeoutS',
};
const PHASES = ['idle', 'rss', 'startup', 'list', 'events', 'timers', 'kill', 'dead'] as const;

export function parseParkOptions(argv: string[]): ParkOptions {
  const o: ParkOptions = {
    sagas: 1_000_000, templates: 2, batch: 20_000, idleS: 60, windowS: 600, burst: 10_000, leadS: 240,
    eventsPerS: 200, eventsS: 30, killAtS: 60, listCalls: 10, scrapes: 5, timeoutS: 300,
    idle: true, rss: true, startup: true, list: true, events: true, timers: true, kill: true, dead: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const phase = PHASES.find((p) => flag === `--no-${p}`);
    if (phase) { o[phase] = false; continue; }
    const key = NUMBERS[flag];
    const n = Number(argv[++i]);
    if (!key || !Number.isFinite(n) || n < 0) throw new Error(`${flag}: ${PARK_USAGE}`);
    (o as unknown as Record<string, number>)[key] = Math.floor(n);
  }
  if (o.sagas < 2 || o.templates < 1 || o.batch < 1) throw new Error(PARK_USAGE);
  // A kill needs the timers' load to land in; without timers there is no window to kill it in.
  if (!o.timers) o.kill = false;
  return o;
}
