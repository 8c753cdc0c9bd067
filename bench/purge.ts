/**
 * Purge benchmark (`make bench-purge`, PURGE_ARGS="--sagas 1000000 --duration 20"): starts the
 * bench stack (order + payment, one orchestrator on Kafka + Postgres), then measures sync booking
 * throughput and ListSagas latency in three phases of `--duration` seconds each:
 *   1. empty store (only the bench's own sagas);
 *   2. full: `--sagas` finished booking sagas filled by SQL, copies (with their steps and events)
 *      of a real COMPLETED SyncBooking saga of phase 1, ended 8 to 15 days ago; no purge;
 *   3. during the purge of those sagas;
 * and how long the whole purge takes. The purge is src/engine/retention.ts with the engine's
 * default pacing (batches of 500, a pause of at least 3 x the batch's time), run from this
 * process on the orchestrator's database (the orchestrator runs with retention off, so that the
 * purge starts when the bench says): the same statements, lock and pacing an instance runs.
 */
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { Client } from 'pg';
import { silentLogger } from '../src/engine/logger';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/options';
import { Retention } from '../src/engine/retention';
import { PostgresSagaStore } from '../src/store/postgres/postgres-store';
import { bookingClients, orchestratorClient, unaryCall } from './clients';
import { runSync, type LoadResult } from './load';
import { cpuSecondsOfCommand } from './procfs';
import { BenchStack } from './stack';
import { Latencies, type LatencySummary } from './stats';

interface Options { sagas: number; duration: number; concurrency: number; listEveryMs: number; chunk: number }

function parse(argv: string[]): Options {
  const opts: Options = { sagas: 1_000_000, duration: 20, concurrency: 64, listEveryMs: 200, chunk: 20_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (key === 'help') throw new Error('usage: purge.js [--sagas N] [--duration S] [--concurrency C] [--list-every-ms MS] [--chunk N]');
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${key}: expected a positive number`);
    if (key === 'sagas') opts.sagas = value;
    else if (key === 'duration') opts.duration = value;
    else if (key === 'concurrency') opts.concurrency = value;
    else if (key === 'list-every-ms') opts.listEveryMs = value;
    else if (key === 'chunk') opts.chunk = value;
    else throw new Error(`unknown option --${key}`);
  }
  return opts;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ListSagas, first page of 50, alternately unfiltered and by facade + status, every `everyMs`, until stopped. */
function listProbe(client: grpc.Client, everyMs: number): { stop: () => Promise<{ all: LatencySummary; filtered: LatencySummary; failures: number }> } {
  const all = new Latencies();
  const filtered = new Latencies();
  let failures = 0;
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const request = i % 2 ? { facade: 'SyncBooking', status: 'COMPLETED', page_size: 50 } : { page_size: 50 };
      const t0 = performance.now();
      const res = await unaryCall(client, 'ListSagas', request, undefined, 30_000);
      if (res.ok) (i % 2 ? filtered : all).add(performance.now() - t0);
      else failures++;
      await sleep(everyMs);
    }
  })();
  return { stop: async () => { running = false; await loop; return { all: all.summary(), filtered: filtered.summary(), failures }; } };
}

interface Phase { name: string; load: LoadResult; list: Awaited<ReturnType<ReturnType<typeof listProbe>['stop']>>; postgresCpu: number }

async function phase(name: string, opts: Options, booking: grpc.Client[], sagas: grpc.Client, tag: string): Promise<Phase> {
  const probe = listProbe(sagas, opts.listEveryMs);
  const pg0 = await cpuSecondsOfCommand('postgres');
  const t0 = performance.now();
  const load = await runSync(booking, tag, opts.concurrency, opts.duration);
  const postgresCpu = (100 * ((await cpuSecondsOfCommand('postgres')) - pg0)) / ((performance.now() - t0) / 1000);
  const list = await probe.stop();
  const result = { name, load, list, postgresCpu };
  console.log(line(result));
  return result;
}

function line(p: Phase): string {
  const rate = p.load.completed / p.load.seconds;
  const ms = (s: LatencySummary) => `p50 ${s.p50.toFixed(1)} / p99 ${s.p99.toFixed(1)} ms`;
  return `[${p.name}] sync ${rate.toFixed(0)} sagas/s (${p.load.completed}, failures ${p.load.failures.toString()}), call ${ms(p.load.latency)}; `
    + `ListSagas first page: unfiltered ${ms(p.list.all)}, facade+status ${ms(p.list.filtered)} (${p.list.all.count + p.list.filtered.count} calls, ${p.list.failures} failed); postgres CPU ${p.postgresCpu.toFixed(0)} %`;
}

/** Copies of `template` (a finished saga, with its steps and events) as `purge-<n>`, ended 8 to 15 days ago, `chunk` sagas per transaction. */
async function fill(dsn: string, template: string, n: number, chunk: number): Promise<number> {
  const db = new Client({ connectionString: dsn });
  await db.connect();
  const t0 = performance.now();
  try {
    // off(g): 8 days + g/n of 7 days before the template's own times.
    const off = `(interval '8 days' + (g::double precision / $3) * interval '7 days')`;
    for (let from = 0; from < n; from += chunk) {
      const to = Math.min(n, from + chunk) - 1;
      await db.query('BEGIN');
      await db.query(`
        INSERT INTO sagas (request_id, facade, version, mode, status, input, output, error, error_code, deadline, owner, lease_expires_at,
                           wake_at, revision, created_at, updated_at, trace_parent, finished_at)
        SELECT 'purge-' || g, t.facade, t.version, t.mode, t.status, t.input, t.output, t.error, t.error_code, t.deadline - ${off}, t.owner,
               t.lease_expires_at - ${off}, NULL, t.revision, t.created_at - ${off}, t.updated_at - ${off}, t.trace_parent, t.updated_at - ${off}
          FROM sagas t, generate_series($1::int, $2::int) g WHERE t.request_id = $4`, [from, to, n, template]);
      await db.query(`
        INSERT INTO saga_steps (request_id, position, name, status, attempts, compensation_attempts, output, error, started_at, ended_at, runner, wake_at)
        SELECT 'purge-' || g, t.position, t.name, t.status, t.attempts, t.compensation_attempts, t.output, t.error,
               t.started_at - ${off}, t.ended_at - ${off}, t.runner, NULL
          FROM saga_steps t, generate_series($1::int, $2::int) g WHERE t.request_id = $4`, [from, to, n, template]);
      await db.query(`
        INSERT INTO saga_events (request_id, seq, at, type, step, detail, pod_id)
        SELECT 'purge-' || g, t.seq, t.at - ${off}, t.type, t.step, t.detail, t.pod_id
          FROM saga_events t, generate_series($1::int, $2::int) g WHERE t.request_id = $4`, [from, to, n, template]);
      await db.query('COMMIT');
      const done = to + 1;
      if (done % (chunk * 10) === 0 || done === n) console.log(`  filled ${done} (${(done / ((performance.now() - t0) / 1000)).toFixed(0)} sagas/s)`);
    }
    await db.query('VACUUM ANALYZE sagas');
    await db.query('VACUUM ANALYZE saga_steps');
    await db.query('VACUUM ANALYZE saga_events');
  } finally {
    await db.end();
  }
  return (performance.now() - t0) / 1000;
}

async function counts(dsn: string, template: string): Promise<{ steps: number; events: number; size: string }> {
  const db = new Client({ connectionString: dsn });
  await db.connect();
  try {
    const { rows: [r] } = await db.query<{ steps: number; events: number; size: string }>(`
      SELECT (SELECT count(*) FROM saga_steps WHERE request_id = $1)::int AS steps, (SELECT count(*) FROM saga_events WHERE request_id = $1)::int AS events,
             pg_size_pretty(pg_database_size(current_database())) AS size`, [template]);
    return r;
  } finally {
    await db.end();
  }
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  // The bench starts the purge itself (below); the orchestrator's own loop stays off.
  process.env.OCH_SAGA_RETENTION_MS = '0';
  const stack = new BenchStack();
  const booking: grpc.Client[] = [];
  let sagas: grpc.Client | undefined;
  let store: PostgresSagaStore | undefined;
  try {
    await stack.start();
    booking.push(...bookingClients(stack.addresses[0], 4));
    sagas = orchestratorClient(stack.addresses[0]);
    console.log(`purge bench: ${opts.sagas} finished sagas, phases of ${opts.duration} s, ${opts.concurrency} sync workers, ListSagas every ${opts.listEveryMs} ms`);
    await runSync(booking, `${stack.runId}-warm`, opts.concurrency, 5);
    const empty = await phase('empty store', opts, booking, sagas, `${stack.runId}-e`);

    const template = `${stack.runId}-e-0`;
    const shape = await counts(stack.databaseDsn, template);
    console.log(`filling ${opts.sagas} finished sagas by SQL: copies of ${template} (a COMPLETED SyncBooking saga of phase 1: ${shape.steps} steps, ${shape.events} events), ended 8 to 15 days ago ...`);
    const fillS = await fill(stack.databaseDsn, template, opts.sagas, opts.chunk);
    console.log(`filled in ${fillS.toFixed(0)} s (with VACUUM ANALYZE); database ${(await counts(stack.databaseDsn, template)).size}`);
    const full = await phase('full, no purge', opts, booking, sagas, `${stack.runId}-f`);

    store = await PostgresSagaStore.create({ dsn: stack.databaseDsn, poolSize: 2, leaseTtlMs: 10_000 }, silentLogger);
    const o = DEFAULT_ENGINE_OPTIONS;
    const retention = new Retention(store, () => undefined, { retentionMs: 7 * 86_400_000, intervalMs: o.retentionIntervalMs, batch: o.retentionBatch, pauseMs: o.retentionPauseMs }, silentLogger);
    const p0 = performance.now();
    const purge = retention.pass();
    const during = await phase('during purge', opts, booking, sagas, `${stack.runId}-p`);
    const { deleted } = await purge;
    const purgeS = (performance.now() - p0) / 1000;
    console.log(`purge: ${deleted} sagas (and their steps and events) deleted in ${purgeS.toFixed(1)} s (${(deleted / purgeS).toFixed(0)} sagas/s), the first ${opts.duration} s under the sync load; database ${(await counts(stack.databaseDsn, template)).size}`);
    const after = await phase('after purge', opts, booking, sagas, `${stack.runId}-a`);

    const rate = (p: Phase) => p.load.completed / p.load.seconds;
    console.log('\nsummary (one orchestrator, Kafka + Postgres, 2-core host shared by everything):');
    console.log('| phase | sync sagas/s | call p50 / p99 ms | ListSagas unfiltered p50 / p99 ms | ListSagas facade+status p50 / p99 ms | postgres CPU % |');
    console.log('|---|---|---|---|---|---|');
    for (const p of [empty, full, during, after]) {
      console.log(`| ${p.name} | ${rate(p).toFixed(0)} (${((100 * rate(p)) / rate(empty)).toFixed(0)} %) | ${p.load.latency.p50.toFixed(1)} / ${p.load.latency.p99.toFixed(1)} | `
        + `${p.list.all.p50.toFixed(1)} / ${p.list.all.p99.toFixed(1)} | ${p.list.filtered.p50.toFixed(1)} / ${p.list.filtered.p99.toFixed(1)} | ${p.postgresCpu.toFixed(0)} |`);
    }
    console.log(`| purge | ${deleted} sagas in ${purgeS.toFixed(1)} s: ${(deleted / purgeS).toFixed(0)} sagas/s | | | | |`);
  } finally {
    await store?.close();
    for (const c of [...booking, sagas]) c?.close();
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
