/**
 * What bench/park.ts measures once N Transfer sagas are parked on their webhook wait: ListSagas
 * latency with a status filter, a restart of the orchestrator (SIGTERM, same pod id) until it
 * holds every saga's lease again, and one webhook event to each of a set of the parked sagas.
 */
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { Client } from 'pg';
import { listAllSagas, unaryCall, type SagaRow } from './clients';
import { cpuSeconds, RssSampler, rssMb } from './procfs';
import type { BenchStack } from './stack';
import { Failures, Latencies, type LatencySummary } from './stats';
import { confirm, forEachLimited, TRANSFER } from './transfer';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `count()` every `pollMs` until it reaches `target` or the deadline; the seconds it took.
 * Progress is printed at most once a second.
 */
export async function until(what: string, target: number, count: () => Promise<number>, timeoutS: number, pollMs = 1_000): Promise<number> {
  const t0 = performance.now();
  let printed = -Infinity;
  for (;;) {
    const n = await count();
    const s = (performance.now() - t0) / 1000;
    if (n >= target) return s;
    if (s > timeoutS) throw new Error(`${what}: ${n} of ${target} after ${timeoutS} s`);
    if (s - printed >= 1) {
      process.stdout.write(`  ${what}: ${n}/${target} after ${s.toFixed(0)} s\n`);
      printed = s;
    }
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------------------------------------
// ListSagas with a status filter

const LIST_PAGE_SIZE = 100;
/** Pages (1-based) timed again after the walk: with keyset paging a deep page should cost what the first does. */
const DEEP_PAGES = [2, 10, 100, 1000];
const DEEP_REPEATS = 10;

export interface ListFigures {
  /** The first page, asked `calls` times. */
  first: LatencySummary;
  /** Each of DEEP_PAGES that exists, asked DEEP_REPEATS times with the page_token that leads to it. */
  deep: { page: number; latency: LatencySummary }[];
  /** Every page once, in turn, through page_token. */
  walk: { pages: number; rows: number; seconds: number; latency: LatencySummary };
}

interface ListPage { sagas: SagaRow[]; next_page_token: string }

/** One ListSagas call (status RUNNING, facade Transfer, 100 a page) and its duration. */
async function listRunning(client: grpc.Client, pageToken: string): Promise<{ page: ListPage; ms: number }> {
  const request = { facade: TRANSFER, status: 'RUNNING', page_size: LIST_PAGE_SIZE, page_token: pageToken };
  const t0 = performance.now();
  const res = await unaryCall<ListPage>(client, 'ListSagas', request, undefined, 30_000);
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`ListSagas: ${res.code} ${res.message}`);
  return { page: res.response, ms };
}

async function timed(times: number, call: () => Promise<number>): Promise<LatencySummary> {
  const latencies = new Latencies();
  for (let k = 0; k < times; k++) latencies.add(await call());
  return latencies.summary();
}

/** Walks every page once, noting each call's duration and the tokens of DEEP_PAGES. */
async function walkPages(client: grpc.Client): Promise<{ walk: ListFigures['walk']; tokens: Map<number, string> }> {
  const tokens = new Map<number, string>();
  const latencies = new Latencies();
  let rows = 0;
  let token = '';
  const t0 = performance.now();
  do {
    const { page, ms } = await listRunning(client, token);
    latencies.add(ms);
    rows += page.sagas.length;
    token = page.next_page_token;
    const next = latencies.count + 1;
    if (token && DEEP_PAGES.includes(next)) tokens.set(next, token);
  } while (token);
  return { walk: { pages: latencies.count, rows, seconds: (performance.now() - t0) / 1000, latency: latencies.summary() }, tokens };
}

/** One call at a time: latency as one operator or dashboard sees it, not throughput. */
export async function measureListSagas(client: grpc.Client, calls: number): Promise<ListFigures> {
  const first = await timed(calls, async () => (await listRunning(client, '')).ms);
  const { walk, tokens } = await walkPages(client);
  const deep: ListFigures['deep'] = [];
  for (const [page, token] of tokens) deep.push({ page, latency: await timed(DEEP_REPEATS, async () => (await listRunning(client, token)).ms) });
  return { first, deep, walk };
}

// ---------------------------------------------------------------------------------------------
// Restart: SIGTERM, then the same process again

export interface RestartFigures {
  stopMs: number;
  exitCode: number | null;
  /** Unfinished sagas with a lapsed lease once the old process had exited: the leases it handed back. */
  released: number;
  /** Spawn .. first SERVING health answer. */
  serveMs: number;
  pid: number;
  /** 5 s after SERVING. */
  rssServing: number | undefined;
  /** Spawn .. no unfinished saga with a lapsed lease: the new process has taken every one back. */
  reclaimS: number;
  /** Highest RSS sampled from SERVING until then (or until the 5 s reading, if later), and RSS then. */
  peakRss: number;
  rssReclaimed: number | undefined;
  /** CPU seconds the new process used from its spawn until it had taken every saga back. */
  cpuS: number | undefined;
}

/** Unfinished sagas and those of them whose lease has lapsed (the predicate of sagas_claim_idx). */
const LEASES_SQL = `SELECT count(*)::int AS unfinished, count(*) FILTER (WHERE lease_expires_at < now())::int AS lapsed
  FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')`;

async function leases(db: Client): Promise<{ unfinished: number; lapsed: number }> {
  const { rows } = await db.query<{ unfinished: number; lapsed: number }>(LEASES_SQL);
  return rows[0];
}

/**
 * The operator's restart of orchestrator 0 with N sagas parked in the store. A SIGTERM'd instance
 * hands its leases back (they lapse at once), and the new one, under the same pod id but a new
 * owner id, takes them back through its recovery loop (saga.recoveryBatch at a time) after it
 * serves: so start-up is both "serving" and "holds every parked saga again".
 */
export async function restartOrchestrator(stack: BenchStack, timeoutS: number): Promise<RestartFigures> {
  const db = new Client({ connectionString: stack.databaseDsn });
  await db.connect();
  try {
    const { stopMs, exitCode } = await stack.stopOrchestrator(0);
    const { unfinished, lapsed: released } = await leases(db);
    const spawnedAt = performance.now();
    const { serveMs, pid } = await stack.startOrchestrator(0);
    console.log(`  serving ${(serveMs / 1000).toFixed(1)} s after the spawn (pid ${pid}); ${released} leases to take back`);
    const rss = new RssSampler(pid);
    rss.start();
    try {
      // Read while the leases are being taken back: that is part of what start-up costs.
      const rssServing = sleep(5_000).then(() => rssMb(pid));
      // Held = not lapsed; a saga that ends meanwhile leaves the lapsed count too. Every 200 ms:
      // a few thousand sagas are taken back in about a second.
      await until('leases held', unfinished, async () => unfinished - (await leases(db)).lapsed, timeoutS, 200);
      const reclaimS = (performance.now() - spawnedAt) / 1000;
      const [cpuS, rssReclaimed] = [await cpuSeconds(pid), await rssMb(pid)];
      // The 5 s may outlast the taking back; the peak then covers both.
      const figures = { stopMs, exitCode, released, serveMs, pid, rssServing: await rssServing, reclaimS, rssReclaimed, cpuS };
      return { ...figures, peakRss: await rss.takePeak() };
    } finally {
      rss.stop();
    }
  } finally {
    await db.end();
  }
}

// ---------------------------------------------------------------------------------------------
// One event to each of a set of parked sagas

export interface DeliveryFigures {
  sagas: number;
  failures: Failures;
  /** First SendEvent .. last SendEvent answered. */
  sendS: number;
  /** First SendEvent .. the newest `updated_at` of those sagas once all are COMPLETED. */
  resumeS: number;
  sendEvent: LatencySummary;
}

/** `k` of the indices 0..n-1, evenly spread from the oldest saga to the newest. */
export function spread(n: number, k: number): number[] {
  return Array.from({ length: Math.min(n, k) }, (_, j) => Math.floor((j * n) / Math.min(n, k)));
}

/**
 * Sends webhook CONFIRMED to each of `ids`, `concurrency` at a time, then polls ListSagas (status
 * COMPLETED, created since `createdFrom`) until `completedBefore + ids.length` have ended, and takes
 * the newest `updated_at` among `ids` as the moment the last one ended (the orchestrator's clock,
 * the same host's).
 */
export async function deliver(ids: readonly string[], opts: {
  concurrency: number; client: (k: number) => grpc.Client; createdFrom: string; completedBefore: number; timeoutS: number; what: string;
}): Promise<DeliveryFigures> {
  const failures = new Failures();
  const calls = new Latencies();
  const firstEvent = Date.now();
  const t0 = performance.now();
  await forEachLimited(ids.length, opts.concurrency, async (k) => {
    const t = performance.now();
    const error = await confirm(opts.client(k), ids[k]);
    if (error) failures.add(error);
    else calls.add(performance.now() - t);
  });
  const sendS = (performance.now() - t0) / 1000;
  console.log(`sent ${ids.length} events${opts.what} in ${sendS.toFixed(1)} s (${(ids.length / sendS).toFixed(0)}/s), failures ${failures.toString()}`);
  const completed = () => listAllSagas(opts.client(0), { facade: TRANSFER, status: 'COMPLETED', createdFrom: opts.createdFrom });
  // Sagas whose SendEvent failed are not waited for (one whose event was taken anyway only adds to the count).
  await until(`completed${opts.what}`, opts.completedBefore + ids.length - failures.total, async () => (await completed()).length, opts.timeoutS);
  const wanted = new Set(ids);
  const lastDone = Math.max(...(await completed()).filter((r) => wanted.has(r.request_id)).map((r) => Date.parse(r.updated_at)));
  return { sagas: ids.length, failures, sendS, resumeS: (lastDone - firstEvent) / 1000, sendEvent: calls.summary() };
}
