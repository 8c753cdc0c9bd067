/**
 * Park test: the orchestrator on Kafka + Postgres (bench/stack.ts); its RSS idle, N Transfer sagas
 * started and parked on their webhook wait, RSS again. Then, with all N parked: ListSagas latency
 * with a status filter; a restart (SIGTERM, then the same process and pod id again: time to serve,
 * RSS, time until it holds every lease again); one SendEvent to each of a sample of them (1,000,
 * spread over all N) and the time until those are COMPLETED; finally one SendEvent to each of the
 * others and the time until all are COMPLETED (unless --only-sample).
 * Every saga must be resumed within saga.asyncDeadlineMs (app.yaml: 300 s) of its start, or it is
 * compensated (DEADLINE_EXCEEDED): for large N give a longer one with BENCH_APP_DIR (README).
 * `node dist/bench/park.js --sagas 10000 [--concurrency 64]` (`make bench-park`).
 */
import { performance } from 'node:perf_hooks';
import { configPath, loadConfig } from '../src/config/load';
import { orchestratorClient } from './clients';
import { deliver, measureListSagas, restartOrchestrator, spread, until, type DeliveryFigures, type ListFigures, type RestartFigures } from './park-phases';
import { rssMb } from './procfs';
import { BenchStack, ROOT } from './stack';
import { Failures, type LatencySummary } from './stats';
import { forEachLimited, getSaga, startTransfer } from './transfer';

const USAGE = `usage: node dist/bench/park.js [--sagas N] [--concurrency N] [--clients N] [--timeout S]
       [--sample N]      parked sagas sent one event after the restart, spread over all N (default 1000; 0: none)
       [--list-calls N]  ListSagas calls of the first page (default 50; 0: no ListSagas figures)
       [--list-pages N]  ListSagas pages walked through page_token (default 100; pages 2, 10, 100, ... timed again)
       [--no-restart]    no SIGTERM and restart of the orchestrator
       [--claim-timeout S]  how long to wait for the restarted one to claim every saga (default --timeout; then on regardless)
       [--only-sample]   the other sagas get no event (they stay parked until the database is dropped)`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ParkOptions {
  sagas: number; concurrency: number; clients: number; timeoutS: number;
  sample: number; listCalls: number; listPages: number; restart: boolean; onlySample: boolean; claimTimeoutS?: number;
}

function parse(argv: string[]): ParkOptions {
  const o: ParkOptions = { sagas: 10_000, concurrency: 64, clients: 4, timeoutS: 600, sample: 1_000, listCalls: 50, listPages: 100, restart: true, onlySample: false };
  const positive = {
    '--sagas': 'sagas', '--concurrency': 'concurrency', '--clients': 'clients', '--timeout': 'timeoutS',
    '--list-pages': 'listPages', '--claim-timeout': 'claimTimeoutS',
  } as const;
  const counts = { '--sample': 'sample', '--list-calls': 'listCalls' } as const;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--no-restart') { o.restart = false; continue; }
    if (flag === '--only-sample') { o.onlySample = true; continue; }
    const n = Number(argv[++i]);
    if (flag in positive && n > 0) o[positive[flag as keyof typeof positive]] = Math.floor(n);
    else if (flag in counts && n >= 0) o[counts[flag as keyof typeof counts]] = Math.floor(n);
    else throw new Error(USAGE);
  }
  o.sample = Math.min(o.sample, o.sagas);
  return o;
}

const mb = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
const s1 = (ms: number) => (ms / 1000).toFixed(1);
const lat = (l: LatencySummary) => `p50 ${l.p50.toFixed(1)} / p99 ${l.p99.toFixed(1)} / max ${l.max.toFixed(1)} ms`;

/** The deadline every saga must be resumed within: from the app.yaml the orchestrator reads. */
function asyncDeadlineS(): number {
  return loadConfig(configPath({ OCH_PATH: process.env.BENCH_APP_DIR ?? ROOT })).saga.asyncDeadlineMs / 1000;
}

type ClientOf = (i: number) => ReturnType<typeof orchestratorClient>;

/** Starts the N Transfers, then polls GetSaga until each waits for its webhook (re-asking only those not yet waiting). */
async function startAndPark(opts: ParkOptions, client: ClientOf, id: (i: number) => string): Promise<{ startS: number; parkedAfterS: number }> {
  const failures = new Failures();
  const t0 = performance.now();
  await forEachLimited(opts.sagas, opts.concurrency, async (i) => {
    const error = await startTransfer(client(i), id(i), i);
    if (error) failures.add(error);
  });
  const startS = (performance.now() - t0) / 1000;
  console.log(`started ${opts.sagas} in ${startS.toFixed(1)} s (${(opts.sagas / startS).toFixed(0)}/s), start failures ${failures.toString()}`);

  let pending = Array.from({ length: opts.sagas }, (_, i) => i);
  const parkS = await until('parked', opts.sagas, async () => {
    const still: number[] = [];
    await forEachLimited(pending.length, opts.concurrency, async (k) => {
      const i = pending[k];
      const saga = await getSaga(client(i), id(i));
      if (typeof saga === 'string' || !saga.waiting.some((w) => w.node === 'webhook')) still.push(i);
    });
    pending = still;
    return opts.sagas - pending.length;
  }, opts.timeoutS);
  return { startS, parkedAfterS: startS + parkS };
}

/** A line of a figures block: the label in a column of its own. */
const row = (label: string, value: string) => console.log(`    ${label.padEnd(38)} ${value}`);

function printList(n: number, l: ListFigures, calls: number): void {
  console.log(`  ListSagas status RUNNING, facade Transfer, page_size 100 (one call at a time, ${n} parked):`);
  row(`first page (x${calls})`, lat(l.first));
  for (const d of l.deep) row(`page ${d.page} via page_token (x${d.latency.count})`, lat(d.latency));
  row('pages 1.. once, in turn', `${l.walk.pages} pages, ${l.walk.rows} rows in ${l.walk.seconds.toFixed(2)} s; per page ${lat(l.walk.latency)}`);
}

function printRestart(n: number, r: RestartFigures): void {
  console.log(`  restart with ${n} parked (SIGTERM, then the same environment and pod id):`);
  row('SIGTERM .. exit', `${s1(r.stopMs)} s (exit code ${r.exitCode})`);
  row('leases lapsed before SIGTERM / at exit', `${r.lapsedBefore} / ${r.lapsedAtExit} (at exit: handed back, or not renewed in time)`);
  row('start-up: spawn .. SERVING', `${s1(r.serveMs)} s`);
  row('RSS 5 s after SERVING', `${mb(r.rssServing)} MB`);
  const claimed = r.claimed < r.unfinished ? `only ${r.claimed} of ${r.unfinished} claimed after ` : '';
  row('spawn .. every saga claimed by it', `${claimed}${r.reclaimS.toFixed(1)} s (${r.lapsedThen} leases lapsed then; CPU ${r.cpuS?.toFixed(1) ?? '-'} s by then; RSS ${mb(r.rssReclaimed)} MB, peak ${mb(r.peakRss)} MB)`);
}

function printSample(n: number, d: DeliveryFigures, concurrency: number, afterRestart: boolean): void {
  console.log(`  one event to each of ${d.sagas} of the ${n} parked (spread over all, ${concurrency} at a time${afterRestart ? ', after the restart' : ''}):`);
  row('first SendEvent .. last COMPLETED', `${d.resumeS.toFixed(2)} s (${(d.sagas / d.resumeS).toFixed(0)} sagas/s; updated_at of the last)`);
  row('SendEvent calls', `${lat(d.sendEvent)}; all sent in ${d.sendS.toFixed(2)} s, failures ${d.failures.toString()}`);
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const stack = new BenchStack();
  const clients = Array.from({ length: opts.clients }, () => ({ c: undefined as ReturnType<typeof orchestratorClient> | undefined }));
  const interrupt = () => {
    console.log('interrupted; stopping');
    // fire-and-forget from a signal handler: exits once the stack has stopped (database and topics dropped)
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await stack.start();
    // The pid changes with the restart; the address (and so the clients) stays.
    const pid = () => stack.orchestrators[0].pid;
    clients.forEach((c) => { c.c = orchestratorClient(stack.addresses[0]); });
    const client = (i: number) => clients[i % clients.length].c!;
    await sleep(5_000);
    const idle = await rssMb(pid());
    console.log(`park: ${opts.sagas} Transfer sagas, ${opts.concurrency} concurrent calls; orchestrator pid ${pid()}, idle RSS ${mb(idle)} MB; saga.asyncDeadlineMs ${asyncDeadlineS()} s`);

    const createdFrom = new Date(Date.now() - 1_000).toISOString();
    const tag = `${stack.runId}-p`;
    const id = (i: number) => `${tag}-${i}`;
    const { parkedAfterS } = await startAndPark(opts, client, id);
    await sleep(5_000);
    const parked = await rssMb(pid());
    console.log(`all ${opts.sagas} parked ${parkedAfterS.toFixed(1)} s after the first start; RSS ${mb(parked)} MB (5 s later)`);

    const list = opts.listCalls > 0 ? await measureListSagas(client(0), opts.listCalls, opts.listPages) : undefined;
    if (list) printList(opts.sagas, list, opts.listCalls);
    if (opts.restart) console.log('restarting the orchestrator (SIGTERM)');
    const restart = opts.restart ? await restartOrchestrator(stack, opts.claimTimeoutS ?? opts.timeoutS) : undefined;
    if (restart) printRestart(opts.sagas, restart);

    const sampleIdx = spread(opts.sagas, opts.sample);
    const inSample = new Set(sampleIdx);
    const deliverTo = (ids: string[], completedBefore: number, what: string) =>
      deliver(ids, { concurrency: opts.concurrency, client, createdFrom, completedBefore, timeoutS: opts.timeoutS, what });
    const sample = sampleIdx.length > 0 ? await deliverTo(sampleIdx.map(id), 0, ' (sample)') : undefined;
    if (sample) printSample(opts.sagas, sample, opts.concurrency, opts.restart);
    const restIds = Array.from({ length: opts.sagas }, (_, i) => i).filter((i) => !inSample.has(i)).map(id);
    const rest = !opts.onlySample && restIds.length > 0 ? await deliverTo(restIds, sampleIdx.length, '') : undefined;
    const after = await rssMb(pid());

    console.log('\npark summary (Kafka transport, Postgres store)');
    console.log(`  sagas                      ${opts.sagas}`);
    console.log(`  idle RSS                   ${mb(idle)} MB`);
    console.log(`  RSS with ${opts.sagas} parked    ${mb(parked)} MB`);
    console.log(`  delta per 1000 parked      ${idle !== undefined && parked !== undefined ? (((parked - idle) * 1000) / opts.sagas).toFixed(2) : '-'} MB`);
    console.log(`  start + park               ${parkedAfterS.toFixed(1)} s`);
    if (list) printList(opts.sagas, list, opts.listCalls);
    if (restart) printRestart(opts.sagas, restart);
    if (sample) printSample(opts.sagas, sample, opts.concurrency, opts.restart);
    const others = sample ? `of the other ${restIds.length} ` : '';
    if (rest) console.log(`  resume ${others}(first SendEvent .. last COMPLETED updated_at)  ${rest.resumeS.toFixed(1)} s = ${(rest.sagas / rest.resumeS).toFixed(0)} sagas/s (events sent in ${rest.sendS.toFixed(1)} s, failures ${rest.failures.toString()})`);
    else if (restIds.length > 0) console.log(`  resume ${others}not run (--only-sample: they stay parked)`);
    console.log(`  RSS ${rest || restIds.length === 0 ? 'after all completed' : 'at the end         '}    ${mb(after)} MB`);
  } finally {
    clients.forEach((c) => c.c?.close());
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
