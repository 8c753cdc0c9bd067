/**
 * The park bench's load (bench/park.ts): SendEvent at a steady rate to random parked Transfers,
 * and a kill -9 of one instance while the sleeps come due.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Client } from 'pg';
import { clientOf, loadProtos } from '../src/grpc/protos';
import { orchestratorClient, unaryCall } from './clients';
import { poll } from './park-phases';
import type { BenchStack } from './stack';
import { Failures, Latencies, type LatencySummary } from './stats';
import { confirm } from './transfer';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface EventFigures {
  sent: number; failures: Failures; call: LatencySummary;
  /**
   * SendEvent called → credit's STEP_STARTED (stamped in the write that records the event), and →
   * its STEP_SUCCEEDED (once its command went through Kafka and the accounts service answered):
   * the bench's clock against the history's, the same host's.
   */
  nextStep: LatencySummary; nextDone: LatencySummary;
  /** Sagas sent an event that did not reach COMPLETED; credits made more often than attempted. */
  lost: number; doubled: number;
  ids: string[];
  /** When each of `ids` was sent, ms since the epoch. */
  calledAt: number[];
}

/** `n` distinct random integers below `max`. */
function randomDistinct(n: number, max: number): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(n, max)) picked.add(Math.floor(Math.random() * max));
  return [...picked];
}

/**
 * Open loop: one SendEvent (webhook CONFIRMED) every 1000/rate ms for `seconds`, whatever the
 * answers take, to distinct random parked Transfers, over the instances' clients in turn.
 */
export async function sendEvents(clients: grpc.Client[], ids: (i: number) => string, waits: number, rate: number, seconds: number): Promise<Omit<EventFigures, 'nextStep' | 'nextDone' | 'lost' | 'doubled'>> {
  const targets = randomDistinct(rate * seconds, waits).map(ids);
  const failures = new Failures();
  const call = new Latencies();
  const ok: string[] = [];
  const calledAt: number[] = [];
  const inFlight: Promise<void>[] = [];
  const t0 = performance.now();
  for (let k = 0; k < targets.length; k++) {
    const wait = t0 + (k * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const id = targets[k];
    const t = performance.now();
    const at = Date.now();
    inFlight.push(confirm(clients[k % clients.length], id).then((error) => {
      if (error) failures.add(error);
      else { call.add(performance.now() - t); ok.push(id); calledAt.push(at); }
    }));
  }
  await Promise.all(inFlight);
  return { sent: targets.length, failures, call: call.summary(), ids: ok, calledAt };
}

/** Once they have settled: the event → next step delays, and the sagas lost or credited twice. */
export async function eventOutcomes(db: Client, accountsAddress: string, ids: string[], calledAt: number[]): Promise<Pick<EventFigures, 'nextStep' | 'nextDone' | 'lost' | 'doubled'>> {
  type Row = { request_id: string; started: number | null; done: number | null; status: string; attempts: number | null };
  const { rows } = await db.query<Row>(`
    SELECT s.request_id, s.status, c.attempts,
           (extract(epoch FROM (SELECT min(at) FROM saga_events e WHERE e.request_id = s.request_id AND e.type = 'STEP_STARTED' AND e.step = 'credit')) * 1000)::float8 AS started,
           (extract(epoch FROM (SELECT min(at) FROM saga_events e WHERE e.request_id = s.request_id AND e.type = 'STEP_SUCCEEDED' AND e.step = 'credit')) * 1000)::float8 AS done
      FROM sagas s LEFT JOIN saga_steps c ON c.request_id = s.request_id AND c.name = 'credit'
     WHERE s.request_id = ANY($1)`, [ids]);
  const called = new Map(ids.map((id, k) => [id, calledAt[k]]));
  const [nextStep, nextDone] = [new Latencies(), new Latencies()];
  for (const r of rows) {
    if (r.started !== null) nextStep.add(r.started - called.get(r.request_id)!);
    if (r.done !== null) nextDone.add(r.done - called.get(r.request_id)!);
  }
  const credits = await creditCalls(accountsAddress);
  const doubled = rows.filter((r) => (credits.get(r.request_id) ?? 0) > (r.attempts ?? 0)).length;
  return { nextStep: nextStep.summary(), nextDone: nextDone.summary(), lost: rows.filter((r) => r.status !== 'COMPLETED').length + (ids.length - rows.length), doubled };
}

/** Credit calls the accounts service received, by saga (its idempotency keys are `<request id>:credit...`). */
async function creditCalls(address: string): Promise<Map<string, number>> {
  const Accounts = clientOf(loadProtos(['accounts.proto']), 'accounts.v1.AccountsService');
  const client = new Accounts(address, grpc.credentials.createInsecure());
  try {
    const res = await unaryCall<{ calls: { method: string; idempotency_key: string; count: number }[] }>(client, 'ListCalls', {}, undefined, 60_000);
    if (!res.ok) throw new Error(`ListCalls: ${res.code} ${res.message}`);
    const byId = new Map<string, number>();
    for (const c of res.response.calls) {
      const m = /^(.*):credit(?::|#|$)/.exec(c.idempotency_key);
      if (c.method === 'Credit' && m) byId.set(m[1], (byId.get(m[1]) ?? 0) + c.count);
    }
    return byId;
  } finally {
    client.close();
  }
}

export interface KillFigures {
  /** Unfinished sagas the killed process owned (its owner ids) at the kill; still its own when the wait ended. */
  owned: number; left: number;
  /** kill → none of them owned by the dead process any more (or the timeout). */
  takenS: number;
  /** spawn → first SERVING health answer; spawn → first GetSaga answered. */
  servingMs: number; answersMs: number;
}

/**
 * kill -9 of instance `i`, spawned again at once under the same pod id; meanwhile the others go on.
 * `probeId`: a saga the restarted process is asked for (GetSaga) until it answers, on a new
 * channel each time (a channel to a dead address backs off for seconds before it tries again).
 */
export async function killAndRestart(stack: BenchStack, db: Client, i: number, probeId: string, timeoutS: number): Promise<KillFigures> {
  const podId = `bench-${i}`;
  const owners = (await db.query<{ owner: string }>(`SELECT DISTINCT owner FROM sagas WHERE owner LIKE $1 AND status IN ('RUNNING', 'COMPENSATING')`, [`${podId}/%`])).rows.map((r) => r.owner);
  const ownedSql = `SELECT count(*)::int AS n FROM sagas WHERE owner = ANY($1) AND status IN ('RUNNING', 'COMPENSATING')`;
  await stack.killOrchestrator(i);
  const killedAt = performance.now();
  const owned = (await db.query<{ n: number }>(ownedSql, [owners])).rows[0].n;
  console.log(`  killed ${podId} (kill -9): it owned ${owned} unfinished sagas (owners ${owners.join(', ') || 'none'}); restarting it`);
  const spawnAt = performance.now();
  let answersMs = NaN;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const client = orchestratorClient(stack.addresses[i]);
      const res = await unaryCall(client, 'GetSaga', { request_id: probeId }, undefined, 1_000);
      client.close();
      if (res.ok) { answersMs = performance.now() - spawnAt; return; }
      await sleep(20);
    }
  })();
  // The others take its sagas while it starts again: both timed from the kill.
  const restart = stack.startOrchestrator(i, 20);
  const taken = await poll('sagas of the killed process taken by others', owned, async () => owned - (await db.query<{ n: number }>(ownedSql, [owners])).rows[0].n, timeoutS,
    // Each count scans every saga (owner has no index): at a million, a second of a core.
    owned > 10_000 ? 1_000 : 250);
  const left = 'reached' in taken ? owned - taken.reached : 0;
  const takenS = (performance.now() - killedAt) / 1000;
  const { serveMs } = await restart;
  await Promise.race([probe, sleep(5_000)]);
  probing = false;
  return { owned, left, takenS, servingMs: serveMs, answersMs };
}
