/**
 * What metrics cost per saga, measured without the noise of a loaded host: the CPU time of the
 * hooks a saga sets off (its history events, its store statements and group commits, its Kafka
 * publishes and consumer batches), run in a loop with the same labels and events as a booking saga
 * under `make bench`, and the CPU of one scrape. Prints the figures, and the share of a saga's CPU
 * they are (against --saga-cpu-ms, the CPU one saga costs across all processes; see the README's
 * Benchmark section). With --profile FILE (a .cpuprofile of the orchestrator from `make bench
 * BENCH_ARGS="--cpu-prof DIR"`), also the share of the orchestrator's busy time under metrics code.
 *
 * node dist/bench/metrics-cost.js [--sagas N] [--saga-cpu-ms 1.7] [--profile FILE]
 */
import { readFileSync } from 'node:fs';
import { Saga, type SagaSnapshot } from '../src/engine/saga';
import { createMetrics } from '../src/metrics';

interface Args { sagas: number; sagaCpuMs: number; profile?: string }

function parseArgs(argv: string[]): Args {
  const usage = 'usage: node dist/bench/metrics-cost.js [--sagas N] [--saga-cpu-ms MS] [--profile FILE]';
  const args: Args = { sagas: 200_000, sagaCpuMs: 1.7 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value; ${usage}`);
    if (flag === '--profile') args.profile = value;
    else if (flag === '--sagas' || flag === '--saga-cpu-ms') {
      const n = Number(value);
      if (!(n > 0)) throw new Error(`${flag} must be a positive number, not ${value}`);
      if (flag === '--sagas') args.sagas = Math.round(n);
      else args.sagaCpuMs = n;
    } else throw new Error(`unknown option ${flag}; ${usage}`);
  }
  return args;
}

/** A booking saga as its three writes leave it: created with createOrder started, then each step's outcome. */
function bookingWrites(facade: string): { view: SagaSnapshot; from: number }[] {
  const saga = Saga.start({ requestId: 'r', facade, version: 1, mode: 'sync', input: {}, steps: ['createOrder', 'createPayment'], podId: 'p' });
  saga.stepStarted('createOrder');
  const writes = [{ view: saga.snapshot(), from: 0 }];
  let from = saga.view().history.length;
  saga.stepSucceeded('createOrder', { orderId: '1' });
  saga.stepStarted('createPayment');
  writes.push({ view: saga.snapshot(), from });
  from = saga.view().history.length;
  saga.stepSucceeded('createPayment', { paymentId: '1' });
  saga.complete({});
  writes.push({ view: saga.snapshot(), from });
  return writes;
}

function cpuUs(run: () => void): number {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

/** Share of the profile's busy time spent with a metrics frame on the stack (prom-client, dist/src/metrics). */
function profileShare(file: string): { busyMs: number; metricsMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[]; samples: number[]; timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const isMetrics = (url: string) => url.includes('node_modules/prom-client/') || url.includes('/dist/src/metrics/');
  const underMetrics = new Map<number, boolean>();
  const under = (id: number): boolean => {
    let known = underMetrics.get(id);
    if (known === undefined) {
      const up = parent.get(id);
      known = isMetrics(byId.get(id)!.callFrame.url) || (up !== undefined && under(up));
      underMetrics.set(id, known);
    }
    return known;
  };
  let busy = 0;
  let metrics = 0;
  profile.samples.forEach((id, i) => {
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    const us = profile.timeDeltas[i] ?? 0;
    busy += us;
    if (under(id)) metrics += us;
  });
  return { busyMs: busy / 1000, metricsMs: metrics / 1000 };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const m = createMetrics(true);
  const facades = ['SyncBooking', 'AsyncBooking', 'ThrottledBooking'];
  const writes = facades.map(bookingWrites);
  const topics = ['booking.async.create-order', 'booking.async.create-payment'];
  const perSaga = (i: number) => {
    const f = i % facades.length;
    for (const w of writes[f]) m.engine.recorded(w.view, w.from);
    // Three statements (create, save, save) and their group commits; two publishes and two consumed batches (async).
    for (const op of ['create', 'save', 'save']) {
      m.store!.operation(op, 0.0015, true);
      m.store!.batch(op, 8);
    }
    for (const topic of topics) {
      m.transport!.published(topic, 0.004, true);
      m.transport!.consumerLag(topic, i % 8, 3);
    }
  };
  for (let i = 0; i < 20_000; i++) perSaga(i); // warm-up: JIT
  const us = cpuUs(() => { for (let i = 0; i < args.sagas; i++) perSaga(i); }) / args.sagas;
  let text = '';
  const scrapeStart = process.cpuUsage();
  for (let i = 0; i < 20; i++) text = (await m.scrape()!).text;
  const scrapeUsed = process.cpuUsage(scrapeStart);
  const scrapeMs = (scrapeUsed.user + scrapeUsed.system) / 20 / 1000;
  console.log(`metrics hooks: ${us.toFixed(2)} µs of CPU per saga (${args.sagas} booking sagas: 3 writes, 6 store observations, 2 publishes, 2 consumer batches)`);
  console.log(`share of a saga's CPU (${args.sagaCpuMs} ms across all processes): ${((100 * us) / (args.sagaCpuMs * 1000)).toFixed(2)} %`);
  console.log(`one scrape (${text.split('\n').length} lines, store gauges not included): ${scrapeMs.toFixed(2)} ms of CPU; at one scrape per 15 s, ${((100 * scrapeMs) / 15_000).toFixed(3)} % of a core`);
  if (args.profile) {
    const { busyMs, metricsMs } = profileShare(args.profile);
    console.log(`profile ${args.profile}: ${metricsMs.toFixed(0)} ms of ${busyMs.toFixed(0)} ms busy under metrics code (${((100 * metricsMs) / busyMs).toFixed(2)} % of the orchestrator's CPU)`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
