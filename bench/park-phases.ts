/**
 * The park bench's reads (bench/park.ts): polling until a count is reached, ListSagas with each
 * combination of filters on the first and the 10th page, and the cost of a /metrics scrape (the
 * store gauges are read at scrape time).
 */
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { unaryCall } from './clients';
import { Latencies, type LatencySummary } from './stats';
import { TRANSFER } from './transfer';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `count()` every `pollMs` until it reaches `target` or the deadline: the seconds it took, or
 * the count reached when the deadline passed. Progress is printed at most every 10 s.
 */
export async function poll(what: string, target: number, count: () => Promise<number>, timeoutS: number, pollMs: number): Promise<{ s: number } | { reached: number; s: number }> {
  const t0 = performance.now();
  let printed = 0;
  for (;;) {
    const n = await count();
    const s = (performance.now() - t0) / 1000;
    if (n >= target) return { s };
    if (s > timeoutS) return { reached: n, s };
    if (s - printed >= 10) {
      console.log(target === 0 ? `  ${what}: ${-n} left after ${s.toFixed(0)} s` : `  ${what}: ${n}/${target} after ${s.toFixed(0)} s`);
      printed = s;
    }
    await sleep(pollMs);
  }
}

/** Polls until `left()` is 0 (or the deadline): the seconds it took, or what was left then. */
export async function pollDown(what: string, left: () => Promise<number>, timeoutS: number, pollMs: number): Promise<{ s: number } | { left: number; s: number }> {
  const r = await poll(what, 0, async () => -(await left()), timeoutS, pollMs);
  return 'reached' in r ? { left: -r.reached, s: r.s } : r;
}

/** poll(), failing the run on timeout. */
export async function until(what: string, target: number, count: () => Promise<number>, timeoutS: number, pollMs = 1_000): Promise<number> {
  const r = await poll(what, target, count, timeoutS, pollMs);
  if ('reached' in r) throw new Error(`${what}: ${r.reached} of ${target} after ${timeoutS} s`);
  return r.s;
}

// ---------------------------------------------------------------------------------------------
// ListSagas

const PAGE_SIZE = 50;
/** The filters an operator combines: facade, status, both, none. */
const FILTERS: { label: string; facade: string; status: string }[] = [
  { label: 'facade Transfer', facade: TRANSFER, status: 'SAGA_STATUS_UNSPECIFIED' },
  { label: 'status RUNNING', facade: '', status: 'RUNNING' },
  { label: 'facade + status', facade: TRANSFER, status: 'RUNNING' },
  { label: 'no filter', facade: '', status: 'SAGA_STATUS_UNSPECIFIED' },
];

export interface ListFigures { label: string; first: LatencySummary; tenth: LatencySummary | undefined }

async function page(client: grpc.Client, f: (typeof FILTERS)[number], token: string): Promise<{ ms: number; next: string }> {
  const t0 = performance.now();
  const res = await unaryCall<{ next_page_token: string }>(client, 'ListSagas', { facade: f.facade, status: f.status, page_size: PAGE_SIZE, page_token: token }, undefined, 60_000);
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`ListSagas ${f.label}: ${res.code} ${res.message}`);
  return { ms, next: res.response.next_page_token };
}

/** One call at a time (an operator's view): `calls` of the first page, then of the 10th (reached once through page_token). */
export async function measureLists(client: grpc.Client, calls: number): Promise<ListFigures[]> {
  const out: ListFigures[] = [];
  for (const f of FILTERS) {
    const first = new Latencies();
    for (let k = 0; k < calls; k++) first.add((await page(client, f, '')).ms);
    let token = '';
    for (let p = 1; p < 10 && (p === 1 || token); p++) token = (await page(client, f, token)).next;
    let tenth: LatencySummary | undefined;
    if (token) {
      const l = new Latencies();
      for (let k = 0; k < calls; k++) l.add((await page(client, f, token)).ms);
      tenth = l.summary();
    }
    out.push({ label: f.label, first: first.summary(), tenth });
  }
  return out;
}

/** GET /metrics `times` in turn: what a Prometheus scrape costs (the store gauges are read then). */
export async function measureScrapes(httpAddress: string, times: number): Promise<{ latency: LatencySummary; bytes: number }> {
  const l = new Latencies();
  let bytes = 0;
  for (let k = 0; k < times; k++) {
    const t0 = performance.now();
    const res = await fetch(`http://${httpAddress}/metrics`);
    const text = await res.text();
    l.add(performance.now() - t0);
    if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
    bytes = text.length;
  }
  return { latency: l.summary(), bytes };
}
