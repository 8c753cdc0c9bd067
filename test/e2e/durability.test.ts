import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase, ThrowawayPostgres } from '../helpers/postgres';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

const protos = loadProtos(['booking.proto']);
const FINAL = ['COMPLETED', 'COMPENSATED'];

interface Load { ids: string[]; calls: Promise<unknown>[] }

/** Fires bookings without waiting: sync and throttled calls stay in flight, async ones return at once. */
function fireLoad(client: grpc.Client, prefix: string, counts: { sync: number; async: number; throttled: number }): Load {
  const ids: string[] = [];
  const calls: Promise<unknown>[] = [];
  const methods = [['HandleSyncBooking', counts.sync], ['HandleAsyncBooking', counts.async], ['HandleThrottlingBooking', counts.throttled]] as const;
  for (const [method, n] of methods) {
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${method.slice(6, 10).toLowerCase()}-${i}`;
      ids.push(id);
      // Every tenth fails at the payment; delays spread the sagas so that many are mid-flight.
      const request = { ProductID: 1 + i, Count: 1, FaultInject: i % 10 === 9, DelayMs: 200 + ((i * 37) % 1500) };
      calls.push(call(client, method, request, { 'x-request-id': id }, 20_000).catch((e: unknown) => e));
    }
  }
  return { ids, calls };
}

interface RecordedSaga { status: string; steps: { name: string; attempts: number; compensation_attempts: number }[] }

/**
 * Every started saga ended COMPLETED or COMPENSATED, and the upstreams agree. `duplicates` counts
 * the (saga, step) pairs for which the order and payment services received more calls with the
 * step's idempotency key (`<requestId>:<step>`) than the saga's record shows attempts of the step,
 * or more with its compensation's key (`<requestId>:<step>:compensate`) than compensation attempts:
 * a step run again without a new attempt on record, which the services' idempotency keys would
 * otherwise hide (one order per request id whatever happens).
 */
async function audit(stack: Stack, ids: string[], timeoutMs = 90_000) {
  const sagas = new Map<string, RecordedSaga>();
  const NEVER: RecordedSaga = { status: 'NEVER_STARTED', steps: [] };
  const ended = (s: RecordedSaga | undefined) => s !== undefined && (FINAL.includes(s.status) || s === NEVER);
  await waitFor(async () => {
    for (const id of ids) {
      if (ended(sagas.get(id))) continue;
      const saga = await stack.saga(id).catch((e: grpc.ServiceError) => (e.code === grpc.status.NOT_FOUND ? NEVER : Promise.reject(e)));
      sagas.set(id, saga as unknown as RecordedSaga);
    }
    return ids.every((id) => ended(sagas.get(id)));
  }, timeoutMs, 'every saga to end').catch((err) => {
    const open = [...sagas].filter(([, s]) => !ended(s)).map(([id, s]) => [id, s.status]);
    throw new Error(`${(err as Error).message}; still open: ${JSON.stringify(open.slice(0, 10))}`);
  });
  const ledger = await stack.ledger();
  const calls = await stack.upstreamCalls();
  const callsWith = (key: string) => Object.values(calls.get(key) ?? {}).reduce((a, b) => a + b, 0);
  const counts = { started: 0, completed: 0, compensated: 0, lost: 0, duplicates: 0, mismatched: [] as string[], duplicated: [] as string[] };
  for (const id of ids) {
    const saga = sagas.get(id)!;
    const { orders, payments } = ledger.get(id) ?? { orders: [], payments: [] };
    if (saga === NEVER) {
      // The process died before the saga was recorded: nothing may exist upstream, nor have been called.
      if (orders.length || payments.length || [...calls.keys()].some((key) => key.startsWith(`${id}:`))) counts.lost++;
      continue;
    }
    counts.started++;
    for (const step of saga.steps) {
      const runs = callsWith(`${id}:${step.name}`);
      const undos = callsWith(`${id}:${step.name}:compensate`);
      if (runs > step.attempts || undos > step.compensation_attempts) {
        counts.duplicates++;
        counts.duplicated.push(`${id} ${step.name}: ${runs} calls for ${step.attempts} attempts, ${undos} compensation calls for ${step.compensation_attempts}`);
      }
      // A step that succeeded was called: the audit above is not comparing against an empty log.
      if (saga.status === 'COMPLETED' && runs === 0) counts.mismatched.push(`${id}: no upstream call with key ${id}:${step.name}`);
    }
    if (orders.length > 1 || payments.length > 1) counts.mismatched.push(`${id}: ${orders.join()}/${payments.join()}`);
    if (saga.status === 'COMPLETED') {
      counts.completed++;
      if (orders.join() !== 'CREATED' || payments.join() !== 'PAID') counts.mismatched.push(`${id}: ${orders.join()}/${payments.join()}`);
    } else if (saga.status === 'COMPENSATED') {
      counts.compensated++;
      if (orders.some((o) => o !== 'CANCELLED') || payments.some((p) => p !== 'REFUNDED')) counts.mismatched.push(`${id}: ${orders.join()}/${payments.join()}`);
    } else {
      counts.lost++;
    }
  }
  return counts;
}

/** The counts as the tests print them: mismatches by number, duplicates by facade and step ("thro createOrder": 3). */
function summary(counts: Awaited<ReturnType<typeof audit>>): string {
  const { duplicated, mismatched, ...rest } = counts;
  const byKind: Record<string, number> = {};
  for (const d of duplicated) {
    const [id, step] = d.split(' ');
    const kind = `${id.split('-').at(-2)} ${step.replace(/:$/, '')}`;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  return JSON.stringify({ ...rest, mismatched: mismatched.length, duplicated: byKind });
}

/** The server on Kafka + Postgres, killed and restarted, or run as two instances; Postgres stopped and restarted. */
describe('durability (Kafka + Postgres)', function () {
  this.timeout(240_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  afterEach(async () => {
    await stack?.stop();
    await db?.drop();
    stack = undefined;
    db = undefined;
  });

  it('SIGKILL mid-load: after a restart under the same pod id every saga ends COMPLETED or COMPENSATED, and the upstreams agree', async () => {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn });
    const load = fireLoad(stack.booking, 'crash', { sync: 100, async: 100, throttled: 50 });
    // Kill once a good share of the sagas is recorded and many are mid-flight.
    await waitFor(async () => {
      const { sagas } = (await call<{ sagas: unknown[] }>(stack!.sagas, 'ListSagas', { status: 'RUNNING', page_size: 1000 })).response;
      return sagas.length >= 60;
    }, 30_000, 'sagas to be in flight');
    stack.orchestrator.kill('SIGKILL');
    await stack.orchestrator.exited;
    await Promise.all(load.calls);
    // Restarted as an operator would: same environment, same pod id (a new process incarnation).
    await stack.startOrchestrator();
    const counts = await audit(stack, load.ids);
    console.log(`      crash test: ${summary(counts)}`);
    expect(counts.mismatched).to.deep.equal([]);
    expect(counts.lost).to.equal(0);
    expect(counts.duplicates, counts.duplicated.slice(0, 10).join('\n')).to.equal(0);
    expect(counts.started).to.be.greaterThan(60);
    expect(counts.completed + counts.compensated).to.equal(counts.started);
  });

  it('two instances in one group, one killed mid-load: the other finishes or compensates every saga', async () => {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn });
    const second = await stack.startInstance('e2e-second');
    const secondClient = new (clientOf(protos, 'pb.BookingService'))(second.address, grpc.credentials.createInsecure());
    const load1 = fireLoad(stack.booking, 'two-a', { sync: 30, async: 60, throttled: 20 });
    const load2 = fireLoad(secondClient, 'two-b', { sync: 30, async: 60, throttled: 20 });
    await waitFor(async () => {
      const { sagas } = (await call<{ sagas: unknown[] }>(stack!.sagas, 'ListSagas', { status: 'RUNNING', page_size: 1000 })).response;
      return sagas.length >= 40;
    }, 30_000, 'sagas to be in flight');
    second.proc.kill('SIGKILL');
    await Promise.all([...load1.calls, ...load2.calls]);
    secondClient.close();
    const counts = await audit(stack, [...load1.ids, ...load2.ids]);
    console.log(`      two instances: ${summary(counts)}`);
    expect(counts.mismatched).to.deep.equal([]);
    expect(counts.lost).to.equal(0);
    expect(counts.duplicates, counts.duplicated.slice(0, 10).join('\n')).to.equal(0);
    expect(counts.completed + counts.compensated).to.equal(counts.started);
  });

  it('Postgres stopped mid-load: UNAVAILABLE while it is down, no saga lost once it is back', async () => {
    const pg = new ThrowawayPostgres();
    await pg.start();
    try {
      stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: pg.dsn });
      const before = fireLoad(stack.booking, 'pgdown', { sync: 0, async: 60, throttled: 0 });
      await Promise.all(before.calls);
      await pg.stop();
      const err = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'pg-while-down' }, 10_000));
      expect(err.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err.details).to.contain('saga store unavailable');
      await pg.start();
      const counts = await audit(stack, before.ids);
      console.log(`      postgres restart: ${summary(counts)}`);
      expect(counts.started).to.equal(60);
      expect(counts.lost).to.equal(0);
      expect(counts.mismatched).to.deep.equal([]);
      expect(counts.duplicates, counts.duplicated.slice(0, 10).join('\n')).to.equal(0);
      expect(counts.completed + counts.compensated).to.equal(60);
    } finally {
      await stack?.stop();
      stack = undefined;
      await pg.destroy();
    }
  });
});
