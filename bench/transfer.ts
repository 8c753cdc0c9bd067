/**
 * The event-driven load: Transfer sagas (debit → gateway → webhook wait → credit) started with
 * StartSaga and resumed with one SendEvent each (bench `--facades transfer`, bench/park.ts).
 */
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { listAllSagas, unaryCall } from './clients';
import type { LoadResult } from './load';
import { Failures, Latencies } from './stats';

export const TRANSFER = 'Transfer';
const CALL_DEADLINE_MS = 30_000;
/** Long enough that no parked saga times out during a run. */
const WEBHOOK_TIMEOUT_MS = 3_600_000;
/** How often a client asks GetSaga whether its saga waits for the webhook yet. */
const POLL_MS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Visit { started_at: string }
interface SagaView { status: string; waiting: { node: string }[]; nodes: { name: string; visits: Visit[] }[] }

export function transferInput(i: number): object {
  return { facade: TRANSFER, version: 1, input_json: JSON.stringify({ from: `a${i % 100}`, to: `b${i % 100}`, amount: 100, webhookTimeoutMs: WEBHOOK_TIMEOUT_MS }) };
}

export async function startTransfer(client: grpc.Client, id: string, i: number): Promise<string | undefined> {
  const res = await unaryCall(client, 'StartSaga', transferInput(i), id, CALL_DEADLINE_MS);
  return res.ok ? undefined : `start:${res.code}`;
}

export async function getSaga(client: grpc.Client, id: string): Promise<SagaView | string> {
  const res = await unaryCall<SagaView>(client, 'GetSaga', { request_id: id }, undefined, CALL_DEADLINE_MS);
  return res.ok ? res.response : `get:${res.code}`;
}

/** Polls GetSaga until the saga waits for its webhook; an error label if it ends or fails first. */
export async function untilWaiting(client: grpc.Client, id: string, timeoutMs: number, pollMs = POLL_MS): Promise<string | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const saga = await getSaga(client, id);
    if (typeof saga === 'string') return saga;
    if (saga.waiting.some((w) => w.node === 'webhook')) return undefined;
    if (saga.status !== 'RUNNING') return `before-webhook:${saga.status}`;
    if (Date.now() > end) return 'wait:TIMEOUT';
    await sleep(pollMs);
  }
}

/** SendEvent webhook CONFIRMED; an error label on failure. */
export async function confirm(client: grpc.Client, id: string): Promise<string | undefined> {
  const request = { request_id: id, event: 'webhook', payload_json: JSON.stringify({ status: 'CONFIRMED' }), idempotency_key: `${id}:webhook` };
  const res = await unaryCall(client, 'SendEvent', request, undefined, CALL_DEADLINE_MS);
  return res.ok ? undefined : `event:${res.code}`;
}

/** started_at of the saga's (first) credit visit, in ms since the epoch. */
export function creditStart(saga: SagaView): number | undefined {
  const visit = saga.nodes.find((n) => n.name === 'credit')?.visits[0];
  return visit?.started_at ? Date.parse(visit.started_at) : undefined;
}

/** Runs `once(i)` for i in 0..n-1, `concurrency` at a time. */
export async function forEachLimited(n: number, concurrency: number, once: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await once(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

/**
 * transfer: closed loop of `concurrency` clients, each StartSaga's a Transfer, polls GetSaga every
 * 10 ms until it waits for the webhook, sends webhook CONFIRMED and notes its own clock when
 * SendEvent returns. Afterwards, once every saga has ended, the latency of each is the credit
 * visit's started_at (GetSaga) minus that clock (same host, same clock). events/s = events
 * acknowledged / the load's seconds.
 */
export async function runTransfer(clients: grpc.Client[], tag: string, concurrency: number, seconds: number, timeoutS: number): Promise<LoadResult & { eventsPerSec: number }> {
  let n = 0;
  const sentAt = new Map<string, number>();
  const callAt = new Map<string, number>();
  const failures = new Failures();
  const eventCall = new Latencies();
  const createdFrom = new Date(Date.now() - 1_000).toISOString();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    const client = clients[w % clients.length];
    while (performance.now() < end) {
      const i = n++;
      const id = `${tag}-${i}`;
      const error = (await startTransfer(client, id, i)) ?? (await untilWaiting(client, id, CALL_DEADLINE_MS));
      if (error) { failures.add(error); continue; }
      const t = performance.now();
      callAt.set(id, Date.now());
      const sent = await confirm(client, id);
      if (sent) { failures.add(sent); continue; }
      eventCall.add(performance.now() - t);
      sentAt.set(id, Date.now());
    }
  }));
  const loadSeconds = (performance.now() - t0) / 1000;
  // Every saga we sent an event to ends; then read each one's credit start.
  const deadline = Date.now() + timeoutS * 1000;
  while ((await listAllSagas(clients[0], { facade: TRANSFER, status: 'RUNNING', createdFrom })).length > 0 && Date.now() < deadline) await sleep(500);
  const latencies = new Latencies();
  const fromCall = new Latencies();
  const ids = [...sentAt.keys()];
  let completed = 0;
  let negative = 0;
  await forEachLimited(ids.length, 16, async (k) => {
    const id = ids[k];
    const saga = await getSaga(clients[k % clients.length], id);
    if (typeof saga === 'string') return failures.add(saga);
    if (saga.status !== 'COMPLETED') return failures.add(saga.status);
    completed++;
    const credit = creditStart(saga);
    if (credit === undefined) return failures.add('NO_CREDIT_VISIT');
    const ms = credit - sentAt.get(id)!;
    if (ms < 0) negative++;
    latencies.add(ms);
    fromCall.add(credit - callAt.get(id)!);
  });
  const e = eventCall.summary();
  const lat = latencies.summary();
  const c = fromCall.summary();
  return {
    completed,
    failures,
    latency: lat,
    seconds: loadSeconds,
    eventsPerSec: sentAt.size / loadSeconds,
    note: `events ${sentAt.size} in ${loadSeconds.toFixed(1)} s = ${(sentAt.size / loadSeconds).toFixed(1)} events/s; ` +
      `SendEvent call p50=${e.p50.toFixed(1)} p99=${e.p99.toFixed(1)} ms; latency = credit started_at - SendEvent returned (${negative} negative: credit started before the answer reached the client); ` +
      `credit started_at - SendEvent called p50=${c.p50.toFixed(1)} p99=${c.p99.toFixed(1)} ms`,
  };
}
