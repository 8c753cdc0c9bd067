import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { loadShipped, ROOT_APP_YAML, shippedConfigs } from '../helpers/shipped-config';
import { call, Stack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

const protos = loadProtos(['booking.proto']);
const ENDED = ['COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED'];

/**
 * The shipped configs grouped by the `saga` block they load to (budgets, timeouts, leases): the
 * outage runs once per distinct block, so a shipped file cannot carry budgets no test runs.
 */
function distinctSagaBlocks(): { names: string[]; file: string }[] {
  const groups: { names: string[]; file: string; saga: string }[] = [];
  for (const { name, file } of shippedConfigs()) {
    const saga = JSON.stringify(loadShipped(file).saga);
    const same = groups.find((g) => g.saga === saga);
    if (same) same.names.push(name);
    else groups.push({ names: [name], file, saga });
  }
  return groups;
}

/**
 * (Saga, step) pairs whose upstream saw more calls under the step's idempotency key than the saga
 * records attempts, or more under its `:compensate` key than compensation attempts (the services'
 * own idempotency would hide a step run twice); and COMPLETED sagas whose steps never reached
 * their upstream (an audit against an empty call log proves nothing).
 */
async function unaccountedCalls(stack: Stack, ids: string[], statuses: Map<string, string>): Promise<string[]> {
  const calls = await stack.upstreamCalls();
  const callsWith = (key: string) => Object.values(calls.get(key) ?? {}).reduce((a, b) => a + b, 0);
  const wrong: string[] = [];
  for (const id of ids) {
    const { steps } = (await stack.saga(id)) as unknown as { steps: { name: string; attempts: number; compensation_attempts: number }[] };
    for (const step of steps) {
      const runs = callsWith(`${id}:${step.name}`);
      const undos = callsWith(`${id}:${step.name}:compensate`);
      if (runs > step.attempts || undos > step.compensation_attempts) wrong.push(`${id} ${step.name}: ${runs} calls for ${step.attempts} attempts, ${undos} undos for ${step.compensation_attempts}`);
      if (statuses.get(id) === 'COMPLETED' && runs === 0) wrong.push(`${id} ${step.name}: COMPLETED with no upstream call`);
    }
  }
  return wrong;
}

/** Polls GetSaga until every saga has ended; returns their statuses. */
async function endings(stack: Stack, ids: string[]): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  await waitFor(async () => {
    for (const id of ids) {
      if (ENDED.includes(statuses.get(id) ?? '')) continue;
      statuses.set(id, (await stack.saga(id)).status);
    }
    return ids.every((id) => ENDED.includes(statuses.get(id)!));
  }, 180_000, 'every saga to end');
  return statuses;
}

/** Slow steps, shutdown and an upstream's restart, on Kafka + Postgres, the server spawned as operators run it. */
describe('resilience (Kafka + Postgres)', function () {
  this.timeout(300_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const clients: grpc.Client[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await stack?.stop();
    await db?.drop();
    stack = undefined;
    db = undefined;
  });

  async function twoInstances() {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn });
    const second = await stack.startInstance('e2e-second');
    const client = new (clientOf(protos, 'pb.BookingService'))(second.address, grpc.credentials.createInsecure());
    clients.push(client);
    return { stack, second, clients: [stack.booking, client] };
  }

  it('a step slower than the Kafka session timeout, with two instances in the group, runs once', async () => {
    // The payment takes 14 s: longer than the consumers' 10 s session timeout, within one step attempt.
    expect(loadShipped(ROOT_APP_YAML).saga.stepTimeoutMs, 'the shipped saga.stepTimeoutMs').to.be.greaterThan(14_000);
    const { stack: s, clients: both } = await twoInstances();
    const ids = ['slow-1', 'slow-2', 'slow-3', 'slow-4'];
    await Promise.all(ids.map((id, i) => call(both[i % 2], 'HandleAsyncBooking', { ProductID: 1, Count: 1, DelayMs: 14_000 }, { 'x-request-id': id })));
    const statuses = await endings(s, ids);
    expect([...statuses.values()]).to.deep.equal(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
    const calls = await s.upstreamCalls();
    expect(ids.map((id) => calls.get(`${id}:createPayment`))).to.deep.equal(ids.map(() => ({ CreatePayment: 1 })));
  });

  it('SIGTERM drains: messages in hand finish and publish their rollbacks before the process exits 0', async () => {
    const { stack: s, second, clients: both } = await twoInstances();
    const ids = Array.from({ length: 16 }, (_, i) => `term-${i}`);
    // Each payment fails after 1.5 s: its consumer then publishes the saga's rollback.
    await Promise.all(ids.map((id, i) => call(both[i % 2], 'HandleAsyncBooking', { ProductID: 1, Count: 1, DelayMs: 1_500, FaultInject: true }, { 'x-request-id': id })));
    await waitFor(async () => {
      const calls = await s.upstreamCalls();
      return ids.filter((id) => calls.has(`${id}:createPayment`)).length >= 12;
    }, 30_000, 'payments to be in flight');
    second.proc.kill('SIGTERM');
    expect(await second.proc.exited).to.equal(0);
    const statuses = await endings(s, ids);
    expect([...new Set(statuses.values())]).to.deep.equal(['COMPENSATED']);
    const logs = second.proc.logs();
    expect(logs.filter((l) => l.message === 'publish failed: recovery will publish it again')).to.deep.equal([]);
    // The drained instance ran compensations or handed rollbacks on; the order of its shutdown shows in its log.
    const order = logs.map((l) => String(l.message)).filter((m) => ['draining', 'stopped'].includes(m));
    expect(order).to.deep.equal(['draining', 'stopped']);
  });

  for (const { names, file } of distinctSagaBlocks()) {
    it(`the order service stopped for 10 s under load, with the saga block of ${names.join(', ')}: every saga still ends COMPLETED or COMPENSATED, none COMPENSATION_FAILED`, () => upstreamOutage(file));
  }

  /** The outage users met: the budgets, timeouts and leases are the shipped file's, with no test override. */
  async function upstreamOutage(shippedConfig: string) {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, shippedConfig });
    const s = stack;
    const ids: string[] = [];
    const calls: Promise<unknown>[] = [];
    const methods = ['HandleSyncBooking', 'HandleAsyncBooking', 'HandleThrottlingBooking'];
    let firing = true;
    const fire = (async () => {
      for (let i = 0; firing; i++) {
        const method = methods[i % 3];
        const id = `up-${method.slice(6, 10).toLowerCase()}-${i}`;
        ids.push(id);
        calls.push(call(s.booking, method, { ProductID: 1 + i, Count: 1, FaultInject: i % 10 === 9, DelayMs: 100 + ((i * 37) % 400) }, { 'x-request-id': id }, 60_000).catch((e: unknown) => e));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await waitFor(() => ids.length >= 30, 30_000, 'load to start');
    await s.stopOrder();
    const stoppedAt = ids.length;
    await new Promise((r) => setTimeout(r, 10_000)); // the outage itself, not a wait for a condition
    await s.startOrder();
    await waitFor(() => ids.length >= stoppedAt + 60, 60_000, 'load after the restart');
    firing = false;
    await fire;
    await Promise.all(calls);
    const statuses = await endings(s, ids);
    const counts: Record<string, number> = {};
    for (const status of statuses.values()) counts[status] = (counts[status] ?? 0) + 1;
    console.log(`      upstream restart: ${ids.length} sagas, ${JSON.stringify(counts)}`);
    const stuck = ids.filter((id) => statuses.get(id) === 'COMPENSATION_FAILED');
    const stuckWhy = await Promise.all(stuck.slice(0, 3).map(async (id) => `${id}: ${String((await s.saga(id)).error)}`));
    expect(stuck, `COMPENSATION_FAILED: ${JSON.stringify(counts)}\n${stuckWhy.join('\n')}`).to.deep.equal([]);
    expect((counts.COMPLETED ?? 0) + (counts.COMPENSATED ?? 0)).to.equal(ids.length);
    // Only the sagas that asked for a failure were compensated: the outage itself undid nothing.
    const compensated = ids.filter((id) => statuses.get(id) === 'COMPENSATED');
    const undone = compensated.filter((id) => Number(id.split('-').pop()) % 10 !== 9);
    const why = await Promise.all(undone.slice(0, 3).map(async (id) => `${id}: ${String((await s.saga(id)).error)}`));
    expect(undone, why.join('\n')).to.deep.equal([]);
    const ledger = await s.ledger();
    const wrong = ids.filter((id) => {
      const { orders, payments } = ledger.get(id) ?? { orders: [], payments: [] };
      return statuses.get(id) === 'COMPLETED' ? orders.join() !== 'CREATED' || payments.join() !== 'PAID' : orders.some((o) => o !== 'CANCELLED');
    });
    expect(wrong).to.deep.equal([]);
    expect(await unaccountedCalls(s, ids, statuses)).to.deep.equal([]);
  }
});
