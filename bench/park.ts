/**
 * Park bench (issue 17): two orchestrator instances on Kafka + Postgres with N sagas parked, half
 * on a Transfer's webhook wait hours away, half on a ParkSleep due over the following minutes (plus
 * a burst all due in one second), seeded by SQL (bench/park-seed.ts). Then, each phase optional:
 * store row writes in an idle minute, RSS, ListSagas and /metrics, start-up with them in the store,
 * and, as the sleeps come due: SendEvent to random waiting sagas, timer lateness, a kill -9 of one
 * instance; dead tuples at the end. Prints each figure beside its target.
 * `node dist/bench/park.js --sagas N [flags]` (`make bench-park`; --help for the flags).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Client } from 'pg';
import { configPath, loadConfig } from '../src/config/load';
import { orchestratorClient } from './clients';
import { eventOutcomes, killAndRestart, sendEvents } from './park-load';
import { parseParkOptions, PARK_USAGE, type ParkOptions } from './park-options';
import { measureLists, measureScrapes, poll, pollDown } from './park-phases';
import { printParkTable, type ParkResults } from './park-report';
import { seed, type Seeded } from './park-seed';
import { deadTuples, idleWrites, sleepsUnfinished, timerFigures } from './park-store';
import { rssMb } from './procfs';
import { BenchStack, ROOT } from './stack';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (t: number) => sleep(Math.max(0, t - Date.now()));

/** Sagas wait hours: their deadline (saga.asyncDeadlineMs) must be further. BENCH_APP_DIR: an app.yaml of your own. */
function appDir(): { dir: string; cleanup: () => void } {
  if (process.env.BENCH_APP_DIR) return { dir: process.env.BENCH_APP_DIR, cleanup: () => undefined };
  const dir = mkdtempSync(path.join(tmpdir(), 'park-bench-'));
  const yaml = readFileSync(path.join(ROOT, 'app.yaml'), 'utf8').replace(/^(\s*asyncDeadlineMs:\s*)\d+/m, '$1172800000');
  writeFileSync(path.join(dir, 'app.yaml'), yaml);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function load(o: ParkOptions, stack: BenchStack, db: Client, clients: grpc.Client[], s: Seeded, leaseTtlS: number, r: ParkResults): Promise<void> {
  if (o.timers) {
    const slack = (s.due0 - Date.now()) / 1000;
    console.log(slack >= 0 ? `the sleeps start coming due in ${slack.toFixed(0)} s` : `the phases before overran --lead-s by ${(-slack).toFixed(0)} s: sleeps are already due`);
    await sleepUntil(s.due0);
  }
  const start = Date.now();
  const events = o.events ? sendEvents(clients, (i) => `${s.waitPrefix}${i}`, s.waits, o.eventsPerS, o.eventsS) : undefined;
  const killAt = start + o.killAtS * 1000;
  const kill = o.kill ? sleepUntil(killAt).then(() => killAndRestart(stack, db, 1, s.templates[0], o.timeoutS)) : undefined;
  const sent = await events;
  if (sent) console.log(`sent ${sent.sent} events in ${o.eventsS} s: call ${sent.call.p50.toFixed(1)} / ${sent.call.p99.toFixed(1)} ms, failures ${sent.failures.toString()}`);
  const killed = await kill;
  if (killed) r.kill = { ...killed, leaseTtlS };
  if (o.timers) {
    const end = Math.max(s.due0 + s.windowMs, s.burstAt + 1_000);
    await sleepUntil(end);
    const settled = await pollDown('due sleeps not COMPLETED', () => sleepsUnfinished(db, s, end), o.timeoutS, 5_000);
    const steady = await timerFigures(db, s, end, [s.due0, killed ? killAt : end]);
    const all = await timerFigures(db, s, end, [s.due0, end]);
    r.timers = { steady, all, perS: s.sleeps / (s.windowMs / 1000), settledS: 'left' in settled ? undefined : settled.s };
  }
  if (sent) {
    await poll('evented sagas COMPLETED', sent.ids.length, async () => (await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sagas WHERE request_id = ANY($1) AND status = 'COMPLETED'`, [sent.ids])).rows[0].n, o.timeoutS, 1_000);
    r.events = { ...sent, ...(await eventOutcomes(db, stack.accountsAddress, sent.ids, sent.calledAt)) };
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) { console.log(PARK_USAGE); return; }
  const o = parseParkOptions(process.argv.slice(2));
  const app = appDir();
  const leaseTtlS = loadConfig(configPath({ OCH_PATH: app.dir })).saga.leaseTtlMs / 1000;
  const stack = new BenchStack();
  let db: Client | undefined;
  let clients: grpc.Client[] = [];
  const interrupt = () => {
    console.log('interrupted; stopping');
    // fire-and-forget from a signal handler: exits once the stack has stopped (database and topics dropped)
    void stack.stop().finally(() => { app.cleanup(); process.exit(130); });
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await stack.start({ instances: 2, orchestratorEnv: { OCH_PATH: app.dir, OCH_PARK_EXAMPLE: 'true' } });
    clients = stack.addresses.map((a) => orchestratorClient(a));
    db = new Client({ connectionString: stack.databaseDsn });
    await db.connect();
    const waits = Math.ceil(o.sagas / 2);
    const sleeps = o.sagas - waits;
    console.log(`park: ${o.sagas} parked sagas (${waits} waits, ${sleeps} sleeps over ${o.windowS} s, + ${o.burst} due in one second), 2 instances; config ${app.dir}`);
    const s = await seed(db, clients, {
      tag: stack.runId, waits, sleeps, burst: o.burst, batch: o.batch, perInstance: o.templates, windowMs: o.windowS * 1000,
      // Without the timers phase the sleeps are due after the run.
      leadMs: o.timers ? o.leadS * 1000 : 86_400_000, burstAfterMs: Math.floor((o.windowS * 1000) / 2),
    }, o.timeoutS);
    console.log(`seeded by SQL: ${waits} waits and ${sleeps + o.burst} sleeps cloned from ${s.templates.length} real sagas started through gRPC, in ${s.seconds.toFixed(0)} s`);
    const r: ParkResults = { sagas: o.sagas, burst: o.burst, seedS: s.seconds };

    if (o.idle) {
      console.log(`idle ${o.idleS} s: row writes to sagas and saga_steps`);
      r.idle = await idleWrites(db, o.idleS);
    }
    if (o.rss) r.rss = await Promise.all(stack.orchestrators.map((p) => rssMb(p.pid)));
    if (o.list) {
      console.log('ListSagas and /metrics');
      r.lists = await measureLists(clients[0], o.listCalls);
      r.scrape = await measureScrapes(stack.httpAddresses[0], o.scrapes);
    }
    // Instance 0 restarts here, instance 1 is killed later: each measured on an instance that holds its share.
    if (o.startup) {
      await stack.stopOrchestrator(0);
      r.startupMs = (await stack.startOrchestrator(0, 20)).serveMs;
      clients[0].close();
      clients[0] = orchestratorClient(stack.addresses[0]);
      console.log(`restarted instance 0 (SIGTERM, spawn): SERVING after ${r.startupMs.toFixed(0)} ms`);
    }
    if (o.events || o.timers) await load(o, stack, db, clients, s, leaseTtlS, r);
    if (o.dead) r.dead = await deadTuples(db);
    printParkTable(r);
  } finally {
    clients.forEach((c) => c.close());
    await db?.end();
    await stack.stop();
    app.cleanup();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
