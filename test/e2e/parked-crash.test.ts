import { expect } from 'chai';
import { Client } from 'pg';
import { TRANSFER } from '../../src/examples/transfer/facade';
import type { TransferInput } from '../../src/examples/transfer/input';
import { WEBHOOK_EVENT, type WebhookPayload } from '../../src/examples/transfer/nodes';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call, Stack, type SagaView } from '../helpers/stack';
import { unreachable, waitFor } from '../helpers/wait';

/** Sagas parked on the webhook wait with no timer due for the whole test: they end by the events sent after the restart. */
const LONG = 100;
/** Sagas parked on the webhook wait with a timer due a few seconds later: around the crash, or while the orchestrator is down. */
const SHORT = 100;
const LONG_TIMEOUT_MS = 120_000;
/** 3000, 3500, ..., 5000 ms: the timers come due spread over the kill, the downtime and the restart. */
const shortTimeoutMs = (i: number): number => 3_000 + (i % 5) * 500;
/** Calls in flight at a time against the orchestrator or a demo service. */
const CONCURRENCY = 32;
const FINAL = ['COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED'];

type Visit = { visit: number; status: string; attempts: number; started_at: string; ended_at: string; wake_at: string };
/** GetSaga's answer (orchestrator.v1.Saga), as far as this test reads it. */
interface SagaWithGraph {
  request_id: string;
  status: string;
  error_code: string;
  error: string;
  steps: (SagaView['steps'][number] & { compensation_attempts: number })[];
  history: { seq: number; at: string; type: string; step: string; detail: string; pod_id: string }[];
  nodes: { name: string; kind: string; visits: Visit[] }[];
}

/** Runs `fn` over `items`, at most `limit` at a time; answers the results in order. */
async function pooled<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The latest visit of the saga's `webhook` node (GetSaga's graph). */
function webhookVisit(saga: SagaWithGraph): Visit | undefined {
  return saga.nodes.find((n) => n.name === 'webhook')?.visits.at(-1);
}

/**
 * The orchestrator SIGKILLed while 200 Transfer sagas are parked on their webhook wait, half of them
 * with a timer due within seconds; restarted as an operator would (same environment, same pod id);
 * then the webhooks of the long-waiting half. Every saga ends as its event or its timer says, and
 * the accounts service saw each side effect exactly once.
 */
describe('SIGKILL with 200 sagas parked on waits and timers (Transfer, Kafka + Postgres)', function () {
  this.timeout(600_000);
  const names = uniqueKafkaNames();
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  before(async () => {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...names, brokers: KAFKA_BROKERS }, postgres: db.dsn, transfer: {} });
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
  });

  it('after the restart: CONFIRMED → COMPLETED, DECLINED and timed out → COMPENSATED; one debit each, one credit or one refund, nothing lost or doubled', async () => {
    const s = stack!;
    const t0 = Date.now();
    const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const longIds = Array.from({ length: LONG }, (_, i) => `pc-long-${i}`);
    const shortIds = Array.from({ length: SHORT }, (_, i) => `pc-short-${i}`);
    const allIds = [...longIds, ...shortIds];
    const confirmed = new Set(longIds.filter((_, i) => i % 2 === 0));
    const declined = new Set(longIds.filter((_, i) => i % 2 === 1));
    const timeoutOf = new Map<string, number>([...longIds.map((id) => [id, LONG_TIMEOUT_MS] as const), ...shortIds.map((id, i) => [id, shortTimeoutMs(i)] as const)]);
    const input = (id: string): TransferInput => ({ from: `from-${id}`, to: `to-${id}`, amount: 100, webhookTimeoutMs: timeoutOf.get(id)! });
    const getSaga = async (id: string) => (await call<SagaWithGraph>(s.sagas, 'GetSaga', { request_id: id })).response;

    // The long ones first: the short ones' timers start last, so that all 200 are parked at once.
    for (const ids of [longIds, shortIds]) {
      const answers = await pooled(ids, CONCURRENCY, (id) => s.startSaga(TRANSFER, input(id), id));
      expect(answers.map((a) => a.request_id)).to.deep.equal(ids);
    }
    const started = elapsed();

    // Every saga's webhook visit WAITING in one and the same sweep of GetSaga.
    let sweeps = 0;
    await waitFor(async () => {
      sweeps++;
      const sagas = await pooled(allIds, CONCURRENCY, getSaga);
      const notParked = sagas.filter((saga) => saga.status !== 'RUNNING' || webhookVisit(saga)?.status !== 'STEP_WAITING');
      // A short timer that fired before all were parked: the timeouts are too short for this machine.
      // An ended saga never parks again: fail now, naming them, rather than after the whole wait.
      const ended = notParked.filter((saga) => saga.status !== 'RUNNING');
      if (ended.length > 0) unreachable(`sagas that ended before all were parked: ${ended.map((saga) => `${saga.request_id} ${saga.status} ${saga.error_code}`).join(', ')}`);
      return notParked.length === 0;
    }, 120_000, 'all 200 sagas to wait for their webhook');
    const parked = elapsed();

    s.orchestrator.kill('SIGKILL');
    await s.orchestrator.exited;
    const killed = elapsed();

    // What the store holds at the crash (nothing writes to it now): which webhook visits were parked.
    const pg = new Client({ connectionString: db!.dsn });
    await pg.connect();
    let parkedAtCrash: Map<string, string>;
    try {
      const { rows } = await pg.query<{ request_id: string; status: string }>(
        "SELECT s.request_id, st.status FROM sagas s JOIN saga_steps st ON st.request_id = s.request_id AND st.name = 'webhook' WHERE s.status = 'RUNNING'",
      );
      parkedAtCrash = new Map(rows.map((r) => [r.request_id, r.status]));
    } finally {
      await pg.end();
    }
    const longParked = longIds.filter((id) => parkedAtCrash.get(id) === 'WAITING').length;
    const shortParked = shortIds.filter((id) => parkedAtCrash.get(id) === 'WAITING').length;
    expect(longParked, 'long-timeout sagas parked in the store at the crash').to.equal(LONG);
    expect(shortParked, 'short-timeout sagas parked in the store at the crash').to.be.greaterThan(SHORT / 2);

    // Restarted as an operator would: same environment, same pod id (a new incarnation).
    await s.startOrchestrator();
    const serving = elapsed();

    await pooled(longIds, CONCURRENCY, (id) => s.sendEvent(
      id, WEBHOOK_EVENT, { status: confirmed.has(id) ? 'CONFIRMED' : 'DECLINED' } satisfies WebhookPayload, `${id}:webhook-1`,
    ));
    const sent = elapsed();

    const final = new Map<string, SagaWithGraph>();
    await waitFor(async () => {
      const open = allIds.filter((id) => !final.has(id));
      const sagas = await pooled(open, CONCURRENCY, getSaga);
      for (const saga of sagas) if (FINAL.includes(saga.status)) final.set(saga.request_id, saga);
      return final.size === allIds.length;
    }, 180_000, 'every saga to end').catch((err: Error) => {
      const open = allIds.filter((id) => !final.has(id));
      throw new Error(`${err.message}; ${open.length} still open, e.g. ${open.slice(0, 10).join(', ')}`);
    });
    const ended = elapsed();

    // Each saga's outcome, as its event or its timer says.
    const outcome = (ids: readonly string[]) => ids.map((id) => `${id} ${final.get(id)!.status} ${final.get(id)!.error_code}`);
    const expected = (ids: readonly string[], status: string, code: string) => ids.map((id) => `${id} ${status} ${code}`);
    expect(outcome([...confirmed])).to.deep.equal(expected([...confirmed], 'COMPLETED', ''));
    expect(outcome([...declined])).to.deep.equal(expected([...declined], 'COMPENSATED', 'FAILED_PRECONDITION'));
    expect(outcome(shortIds)).to.deep.equal(expected(shortIds, 'COMPENSATED', 'DEADLINE_EXCEEDED'));

    // No timer fired early: each short wait ended no sooner than its timeout after it started.
    let latest = 0;
    const early = shortIds.flatMap((id) => {
      const v = webhookVisit(final.get(id)!)!;
      const waited = Date.parse(v.ended_at) - Date.parse(v.started_at);
      latest = Math.max(latest, waited - timeoutOf.get(id)!);
      return waited >= timeoutOf.get(id)! ? [] : [`${id}: waited ${waited} ms of ${timeoutOf.get(id)}`];
    });
    expect(early, 'webhook waits that timed out early').to.deep.equal([]);

    // The side effects, from the accounts service: its entries by request id ...
    const { entries } = (await call<{ entries: { request_id: string; kind: string; account: string; amount: string }[] }>(s.accounts, 'ListEntries', {})).response;
    const kindsOf = new Map<string, string[]>();
    for (const e of entries) (kindsOf.get(e.request_id) ?? kindsOf.set(e.request_id, []).get(e.request_id)!).push(e.kind);
    const effects = allIds.map((id) => `${id} ${(kindsOf.get(id) ?? []).join(',')}`);
    const wanted = allIds.map((id) => `${id} ${final.get(id)!.status === 'COMPLETED' ? 'DEBIT,CREDIT' : 'DEBIT,REFUND'}`);
    expect(effects).to.deep.equal(wanted);
    expect(entries.filter((e) => !timeoutOf.has(e.request_id)), 'entries of no saga of this test').to.deep.equal([]);

    // ... the calls it received by idempotency key (no more than the attempts on the saga's record) ...
    const calls = new Map<string, number>();
    for (const client of [s.accounts, s.gateway]) {
      const answer = (await call<{ calls: { method: string; idempotency_key: string; count: number }[] }>(client, 'ListCalls', {})).response;
      for (const c of answer.calls) calls.set(`${c.method} ${c.idempotency_key}`, (calls.get(`${c.method} ${c.idempotency_key}`) ?? 0) + c.count);
    }
    const unaccounted = allIds.flatMap((id) => {
      const saga = final.get(id)!;
      const step = (name: string) => saga.steps.find((st) => st.name === name);
      const checks: [string, number, number][] = [
        ['Debit', calls.get(`Debit ${id}:debit`) ?? 0, step('debit')?.attempts ?? 0],
        ['Charge', calls.get(`Charge ${id}:gateway`) ?? 0, step('gateway')?.attempts ?? 0],
        ['Credit', calls.get(`Credit ${id}:credit`) ?? 0, step('credit')?.attempts ?? 0],
        ['Refund', calls.get(`Refund ${id}:debit:compensate`) ?? 0, step('debit')?.compensation_attempts ?? 0],
        ['ReverseCredit', calls.get(`ReverseCredit ${id}:credit:compensate`) ?? 0, step('credit')?.compensation_attempts ?? 0],
      ];
      return checks.filter(([, n, attempts]) => n > attempts).map(([method, n, attempts]) => `${id} ${method}: ${n} calls for ${attempts} attempts`);
    });
    expect(unaccounted, 'upstream calls beyond the attempts on record').to.deep.equal([]);
    // Steps called more than once: reported with one saga's history, then refused.
    const repeated = [...calls].filter(([key, n]) => n > 1 && timeoutOf.has(key.split(' ')[1].split(':')[0])).map(([key, n]) => `${key} ×${n}`);
    if (repeated.length > 0) {
      const id = repeated[0].split(' ')[1].split(':')[0];
      const history = final.get(id)!.history.map((e) => `${e.at} ${e.pod_id} ${e.type} ${e.step} ${e.detail}`);
      const logs = s.orchestrator.logs().filter((l) => l.requestId === id).map((l) => JSON.stringify(l));
      console.log(`      calls repeated (within the attempts on record): ${repeated.join(', ')}\n      history of ${id}:\n        ${history.join('\n        ')}`
        + `\n      the restarted orchestrator's log lines of ${id}:\n        ${logs.join('\n        ')}`);
    }
    // Nothing was cut off mid-step (every saga was parked when the process died): no step runs twice.
    expect(repeated, 'upstream calls repeated').to.deep.equal([]);
    const callTotals: Record<string, number> = {};
    for (const [key, n] of calls) callTotals[key.split(' ')[0]] = (callTotals[key.split(' ')[0]] ?? 0) + n;

    // ... and the gateway's charges: one per saga.
    const { charges } = (await call<{ charges: { id: string; request_id: string }[] }>(s.gateway, 'ListCharges', {})).response;
    expect(charges.map((c) => c.request_id).sort()).to.deep.equal([...allIds].sort());

    console.log(`      parked crash: started ${started}, all parked ${parked} (${sweeps} sweeps), killed ${killed} `
      + `(parked in the store: ${longParked} long, ${shortParked} short), serving again ${serving}, events sent ${sent}, all ended ${ended}; `
      + `timers fired up to ${(latest / 1000).toFixed(1)} s late; `
      + `calls ${JSON.stringify(callTotals)}`);
  });
});
