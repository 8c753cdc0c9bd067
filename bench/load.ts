import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { listAllSagas, unaryCall, type SagaRow } from './clients';
import { Failures, Latencies, type LatencySummary } from './stats';

/** What one load phase measured (RSS is added by the caller). */
export interface LoadResult {
  completed: number;
  failures: Failures;
  latency: LatencySummary;
  /** Seconds from the first request to the last completion. */
  seconds: number;
  note?: string;
}

const BOOKING = { ProductID: '1', Count: '1', FaultInject: false };
const CALL_DEADLINE_MS = 30_000;
const TERMINAL = new Set(['COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Unique request ids: `<tag>-<n>`. */
function idSource(tag: string): () => string {
  let n = 0;
  return () => `${tag}-${n++}`;
}

/** Runs `concurrency` workers, each calling `once(client)` back to back until `seconds` have passed. */
async function closedLoop(clients: grpc.Client[], concurrency: number, seconds: number, once: (client: grpc.Client) => Promise<void>): Promise<void> {
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    const client = clients[w % clients.length];
    while (performance.now() < end) await once(client);
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
}

/** sync: closed loop of HandleSyncBooking; latency = call time. */
export async function runSync(clients: grpc.Client[], tag: string, concurrency: number, seconds: number): Promise<LoadResult> {
  const nextId = idSource(tag);
  const latencies = new Latencies();
  const failures = new Failures();
  const t0 = performance.now();
  await closedLoop(clients, concurrency, seconds, async (client) => {
    const start = performance.now();
    const res = await unaryCall(client, 'HandleSyncBooking', BOOKING, nextId(), CALL_DEADLINE_MS);
    if (res.ok) latencies.add(performance.now() - start);
    else failures.add(res.code);
  });
  return { completed: latencies.count, failures, latency: latencies.summary(), seconds: (performance.now() - t0) / 1000 };
}

/** Polls ListSagas (status filter) until none of the facade's sagas is RUNNING or COMPENSATING. */
async function waitAllTerminal(sagas: grpc.Client, facade: string, createdFrom: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const running = (await listAllSagas(sagas, { facade, status: 'RUNNING', createdFrom })).length
      + (await listAllSagas(sagas, { facade, status: 'COMPENSATING', createdFrom })).length;
    if (running === 0 || Date.now() > end) return running;
    await sleep(1_000);
  }
}

/**
 * async: closed loop of HandleAsyncBooking; then waits (ListSagas, no per-id GetSaga) until every
 * saga has ended. Latency = saga updated_at (when it became COMPLETED) - when its call was started.
 */
export async function runAsync(clients: grpc.Client[], sagas: grpc.Client, tag: string, concurrency: number, seconds: number, timeoutS: number): Promise<LoadResult> {
  const nextId = idSource(tag);
  const startedAt = new Map<string, number>();
  const accept = new Latencies();
  const failures = new Failures();
  const createdFrom = new Date(Date.now() - 1_000).toISOString();
  const firstStart = Date.now();
  await closedLoop(clients, concurrency, seconds, async (client) => {
    const id = nextId();
    const start = Date.now();
    const t = performance.now();
    const res = await unaryCall(client, 'HandleAsyncBooking', BOOKING, id, CALL_DEADLINE_MS);
    if (!res.ok) return failures.add(`start:${res.code}`);
    accept.add(performance.now() - t);
    startedAt.set(id, start);
  });
  const loadEnd = Date.now();
  const stillRunning = await waitAllTerminal(sagas, 'AsyncBooking', createdFrom, timeoutS * 1000);
  const rows = await listAllSagas(sagas, { facade: 'AsyncBooking', createdFrom });
  const { latencies, lastCompletion } = completionLatencies(rows, startedAt, failures);
  const a = accept.summary();
  return {
    completed: latencies.count,
    failures,
    latency: latencies.summary(),
    seconds: ((lastCompletion || Date.now()) - firstStart) / 1000,
    note: `started ${startedAt.size} in ${((loadEnd - firstStart) / 1000).toFixed(1)} s (${(startedAt.size / ((loadEnd - firstStart) / 1000)).toFixed(1)}/s), ` +
      `accept p50=${a.p50.toFixed(1)} p99=${a.p99.toFixed(1)} ms, drained ${((Date.now() - loadEnd) / 1000).toFixed(1)} s after load` +
      (stillRunning ? `, ${stillRunning} still running at timeout` : ''),
  };
}

/** Latencies of the COMPLETED sagas we started; other outcomes go to `failures` by saga status. */
function completionLatencies(rows: SagaRow[], startedAt: Map<string, number>, failures: Failures): { latencies: Latencies; lastCompletion: number } {
  const latencies = new Latencies();
  let lastCompletion = 0;
  const seen = new Set<string>();
  for (const row of rows) {
    const start = startedAt.get(row.request_id);
    if (start === undefined) continue;
    seen.add(row.request_id);
    if (row.status !== 'COMPLETED') {
      failures.add(TERMINAL.has(row.status) ? row.status : `unfinished:${row.status}`);
      continue;
    }
    const done = Date.parse(row.updated_at);
    latencies.add(done - start);
    lastCompletion = Math.max(lastCompletion, done);
  }
  const missing = startedAt.size - seen.size;
  for (let i = 0; i < missing; i++) failures.add('NOT_LISTED');
  return { latencies, lastCompletion };
}

/** throttled: open loop at `rate` calls/s of HandleThrottlingBooking, each with a deadline; success = OK. */
export async function runThrottled(clients: grpc.Client[], tag: string, rate: number, seconds: number, deadlineS: number): Promise<LoadResult> {
  const nextId = idSource(tag);
  const latencies = new Latencies();
  const failures = new Failures();
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  let lastOk = t0;
  let sent = 0;
  const fire = () => {
    const start = performance.now();
    const p = unaryCall(clients[sent % clients.length], 'HandleThrottlingBooking', BOOKING, nextId(), deadlineS * 1000).then((res) => {
      if (res.ok) {
        lastOk = performance.now();
        latencies.add(lastOk - start);
      } else failures.add(res.code);
      inFlight.delete(p);
    });
    inFlight.add(p);
    sent++;
  };
  const total = Math.round(rate * seconds);
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) fire();
    await sleep(2);
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  await Promise.all(inFlight);
  return {
    completed: latencies.count,
    failures,
    latency: latencies.summary(),
    seconds: (lastOk - t0) / 1000,
    note: `sent ${sent} in ${sendSeconds.toFixed(1)} s (${(sent / sendSeconds).toFixed(1)}/s offered)`,
  };
}
