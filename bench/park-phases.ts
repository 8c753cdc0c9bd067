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
 * Polls `count()` every `pollMs` until it reaches `target` or the deadline: the seconds it took, or
 * the count reached when the deadline passed. Progress is printed at most once a second.
 */
async function poll(what: string, target: number, count: () => Promise<number>, timeoutS: number, pollMs: number): Promise<{ s: number } | { reached: number }> {
  const t0 = performance.now();
  let printed = -Infinity;
  for (;;) {
    const n = await count();
    const s = (performance.now() - t0) / 1000;
    if (n >= target) return { s };
    if (s > timeoutS) return { reached: n };
    if (s - printed >= 1) {
      process.stdout.write(`  ${what}: ${n}/${target} after ${s.toFixed(0)} s\n`);
      printed = s;
    }
    await sleep(pollMs);
  }
}

/** poll(), failing the run on timeout. */
export async function until(what: string, target: number, count: () => Promise<number>, timeoutS: number, pollMs = 1_000): Promise<number> {
  const r = await poll(what, target, count, timeoutS, pollMs);
  if ('reached' in r) throw new Error(`${what}: ${r.reached} of ${target} after ${timeoutS} s`);
  return r.s;
}

// ---------------------------------------------------------------------------------------------
// ListSagas with a status filter

const LIST_PAGE_SIZE = 100;
/** Pages (1-based) timed again after the walk: with keyset paging a deep page should cost what the first does. */
const DEEP_PAGES = [2, 10, 100, 1000, 10_000];
const DEEP_REPEATS = 10;

export interface ListFigures {
  /** The first page, asked `calls` times. */
  first: LatencySummary;
  /** Each of DEEP_PAGES that exists, asked DEEP_REPEATS times with the page_token that leads to it. */
  deep: { page: number; latency: LatencySummary }[];
  /** The first `maxPages` pages (or all, if fewer) once, in turn, through page_token. */
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

/** Walks the first `maxPages` pages once, noting each call's duration and the tokens of DEEP_PAGES. */
async function walkPages(client: grpc.Client, maxPages: number): Promise<{ walk: ListFigures['walk']; tokens: Map<number, string> }> {
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
    if (token && next <= maxPages && DEEP_PAGES.includes(next)) tokens.set(next, token);
  } while (token && latencies.count < maxPages);
  return { walk: { pages: latencies.count, rows, seconds: (performance.now() - t0) / 1000, latency: latencies.summary() }, tokens };
}

/**
 * One call at a time: latency as one operator or dashboard sees it, not throughput. A page deeper
 * than the first is reached only by walking there (the token is opaque), hence `maxPages`.
 */
export async function measureListSagas(client: grpc.Client, calls: number, maxPages: number): Promise<ListFigures> {
  const first = await timed(calls, async () => (await listRunning(client, '')).ms);
  const { walk, tokens } = await walkPages(client, maxPages);
  const deep: ListFigures['deep'] = [];
  for (const [page, token] of tokens) deep.push({ page, latency: await timed(DEEP_REPEATS, async () => (await listRunning(client, token)).ms) });
  return { first, deep, walk };
}

// ---------------------------------------------------------------------------------------------
// Restart: SIGTERM, then the same process again

export interface RestartFigures {
  stopMs: number;
  exitCode: number | null;
  /**
   * Unfinished sagas whose lease had lapsed just before the SIGTERM (the heartbeat falling behind),
   * and once the old process had exited (those, and the leases it handed back).
   */
  lapsedBefore: number;
  lapsedAtExit: number;
  /** Spawn .. first SERVING health answer. */
  serveMs: number;
  pid: number;
  /** 5 s after SERVING. */
  rssServing: number | undefined;
  /**
   * Spawn .. every unfinished saga claimed by the new process (or the timeout, if `claimed` is
   * less than `unfinished`); and how many leases had lapsed then.
   */
  reclaimS: number;
  unfinished: number;
  claimed: number;
  lapsedThen: number;
  /** Highest RSS sampled from SERVING until then (or until the 5 s reading, if later), and RSS then. */
  peakRss: number;
  rssReclaimed: number | undefined;
  /** CPU seconds the new process used from its spawn until it had taken every saga back. */
  cpuS: number | undefined;
}

const UNFINISHED = `status IN ('RUNNING', 'COMPENSATING')`;
/** The owners (`<pod id>/<start id>`, a new start id at each start) of unfinished sagas. */
const OWNERS_SQL = `SELECT DISTINCT owner FROM sagas WHERE ${UNFINISHED}`;
/** Unfinished sagas; those whose lease has lapsed; those owned by none of the owners $1 (claimed since). */
const LEASES_SQL = `SELECT count(*)::int AS unfinished, count(*) FILTER (WHERE lease_expires_at < now())::int AS lapsed,
    count(*) FILTER (WHERE owner <> ALL($1::text[]))::int AS claimed
  FROM sagas WHERE ${UNFINISHED}`;

interface Leases { unfinished: number; lapsed: number; claimed: number }

async function leases(db: Client, oldOwners: readonly string[]): Promise<Leases> {
  return (await db.query<Leases>(LEASES_SQL, [oldOwners])).rows[0];
}

/**
 * The operator's restart of orchestrator 0 with N sagas parked in the store. A SIGTERM'd instance
 * hands its leases back (they lapse at once) unless something is still in hand; otherwise they
 * lapse saga.leaseTtlMs after its last renewal. The new one, under the same pod id but a new owner
 * id, takes them through its recovery loop (saga.recoveryBatch at a time) once they have lapsed,
 * after it serves: so start-up is both "serving" and "has claimed every parked saga". `timeoutS`
 * bounds the wait for the latter; past it the figures say how many it had claimed.
 */
export async function restartOrchestrator(stack: BenchStack, timeoutS: number): Promise<RestartFigures> {
  const db = new Client({ connectionString: stack.databaseDsn });
  await db.connect();
  try {
    const oldOwners = (await db.query<{ owner: string }>(OWNERS_SQL)).rows.map((r) => r.owner);
    const before = await leases(db, oldOwners);
    const { stopMs, exitCode } = await stack.stopOrchestrator(0);
    const atExit = await leases(db, oldOwners);
    const spawnedAt = performance.now();
    const { serveMs, pid } = await stack.startOrchestrator(0);
    console.log(`  serving ${(serveMs / 1000).toFixed(1)} s after the spawn (pid ${pid}); leases lapsed before SIGTERM ${before.lapsed}, at the exit ${atExit.lapsed} of ${atExit.unfinished}`);
    const rss = new RssSampler(pid);
    rss.start();
    try {
      // Read while the leases are being taken: that is part of what start-up costs.
      const rssServing = sleep(5_000).then(() => rssMb(pid));
      // Each poll counts every unfinished saga: at 100,000 that is a good part of a second of one
      // Postgres backend, taken from the recovery it measures; so every 200 ms only for small N.
      const pollMs = atExit.unfinished > 10_000 ? 1_000 : 200;
      // Claimed = owned by the new process, whether or not its lease is current at that moment: an
      // instance whose renewals fall behind lets its own leases lapse and claims them again. A saga
      // that ends meanwhile counts as claimed. Not all within the timeout: said, and the run goes on
      // (the events still have figures to give).
      let lapsedThen = 0;
      const claimed = await poll('sagas claimed by the new process', atExit.unfinished, async () => {
        const now = await leases(db, oldOwners);
        lapsedThen = now.lapsed;
        return now.claimed + (atExit.unfinished - now.unfinished);
      }, timeoutS, pollMs);
      const reclaimS = (performance.now() - spawnedAt) / 1000;
      const claimedAtEnd = 'reached' in claimed ? claimed.reached : atExit.unfinished;
      const [cpuS, rssReclaimed] = [await cpuSeconds(pid), await rssMb(pid)];
      // The 5 s may outlast the taking; the peak then covers both.
      const figures = { stopMs, exitCode, lapsedBefore: before.lapsed, lapsedAtExit: atExit.lapsed, serveMs, pid, rssServing: await rssServing, reclaimS, unfinished: atExit.unfinished, claimed: claimedAtEnd, lapsedThen, rssReclaimed, cpuS };
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
