import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { httpGet } from '../helpers/http';
import { KAFKA_BROKERS, testKafka, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call, Stack, type SagaView } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

const protos = loadProtos(['booking.proto', 'orchestrator.proto']);
/** Clients that reconnect at once: grpc-js otherwise backs off for seconds from a port nobody listens on yet. */
const FAST_RECONNECT = { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 };
const ENDED = ['COMPLETED', 'COMPENSATED'];

interface Probe { status: number; reason?: unknown }
const readyz = async (port: number): Promise<Probe> => {
  const { status, body } = await httpGet(port, '/readyz');
  return { status, reason: body.reason };
};

/**
 * A restart under the same pod id after kill -9: Kafka holds the dead member's partitions until its
 * session times out, so the consumer groups take seconds to take the new process in. Calls are
 * served meanwhile, /readyz says "joining" until the consumers are in, and no saga is lost or run twice.
 */
describe('restart after kill -9: serving while the consumer groups rejoin (Kafka + Postgres)', function () {
  this.timeout(240_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const clients: grpc.Client[] = [];
  const kafka = uniqueKafkaNames();
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await stack?.stop();
    await db?.drop();
    stack = db = undefined;
    // The broker runs out of heap under the topics of many runs: this test's go with it.
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(kafka.topicPrefix));
      if (topics.length > 0) await admin.deleteTopics({ topics });
    } finally {
      await admin.disconnect();
    }
  });

  it('answers gRPC, sync bookings included, before /readyz says ready; ready once the consumers are in; nothing lost or doubled', async () => {
    db = await freshDatabase();
    // Kafka takes the restarted process in only once the killed one's session has timed out: 30 s,
    // not the shipped 10 s, so that a start slowed by a loaded machine still leaves the join under way.
    const env = { OCH_KAFKA_SESSION_TIMEOUT_MS: '30000' };
    stack = await Stack.start({ transport: 'kafka', kafka: { ...kafka, brokers: KAFKA_BROKERS }, postgres: db.dsn, orchestratorEnv: env });
    const s = stack;
    const port = s.ports.http;
    expect((await readyz(port)).status, 'ready before the kill').to.equal(200);

    // Sagas in flight across the kill: async ones move through Kafka, throttled callers wait on them.
    const before: string[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const [method, id] = i % 3 === 0 ? ['HandleThrottlingBooking', `thr-${i}`] : ['HandleAsyncBooking', `async-${i}`];
      before.push(id);
      calls.push(call(s.booking, method, { ProductID: 1 + i, FaultInject: i % 10 === 9, DelayMs: 300 + i * 40 }, { 'x-request-id': id }, 20_000).catch((e: unknown) => e));
    }
    // Killed once every saga is recorded and many are mid-flight.
    await waitFor(async () => {
      const { sagas } = (await call<{ sagas: { status: string }[] }>(s.sagas, 'ListSagas', { page_size: 100 })).response;
      return sagas.length === before.length && sagas.filter((v) => v.status === 'RUNNING').length >= 10;
    }, 30_000, 'every saga recorded, many in flight');
    s.orchestrator.kill('SIGKILL');
    await s.orchestrator.exited;
    await Promise.all(calls);

    // Restarted as an operator would: same environment and pod id, not waited for here.
    s.orchestrator = s.spawn(['dist/src/main.js'], { ...env, OCH_PATH: s.dir, POD_ID: 'e2e' });
    const sagas = new (clientOf(protos, 'orchestrator.v1.OrchestratorService'))(s.address, grpc.credentials.createInsecure(), FAST_RECONNECT);
    const booking = new (clientOf(protos, 'pb.BookingService'))(s.address, grpc.credentials.createInsecure(), FAST_RECONNECT);
    clients.push(sagas, booking);
    const events: string[] = [];

    // (a) The first gRPC answer, then a sync booking (its steps run in-process) and a throttled and an
    // async one (their steps wait in Kafka for a consumer): all while readiness still says joining.
    await waitFor(async () => (await call<SagaView>(sagas, 'GetSaga', { request_id: before[0] }, {}, 2_000)).response, 60_000, 'the restarted process to answer GetSaga');
    events.push(`GetSaga answered; readyz ${JSON.stringify(await readyz(port))}`);
    const sync = await call<{ OrderID: string; PaymentID: string }>(booking, 'HandleSyncBooking', { ProductID: 7 }, { 'x-request-id': 'during-sync' });
    expect(Number(sync.response.PaymentID), 'a payment for the sync booking').to.be.greaterThan(0);
    events.push(`sync booking answered; readyz ${JSON.stringify(await readyz(port))}`);
    const throttled = call<{ PaymentID: string }>(booking, 'HandleThrottlingBooking', { ProductID: 8 }, { 'x-request-id': 'during-throttled' }, 60_000);
    await call(booking, 'HandleAsyncBooking', { ProductID: 9 }, { 'x-request-id': 'during-async' });
    events.push(`async booking answered; readyz ${JSON.stringify(await readyz(port))}`);
    const joining = JSON.stringify({ status: 503, reason: 'joining' });
    expect(events, 'what readiness said as each call was answered').to.deep.equal([
      `GetSaga answered; readyz ${joining}`, `sync booking answered; readyz ${joining}`, `async booking answered; readyz ${joining}`,
    ]);

    // (b) Ready once the consumer groups are in; the throttled call, whose step waited for them, is answered.
    await waitFor(async () => (await readyz(port)).status === 200, 60_000, '/readyz to say ready');
    const logged = s.orchestrator.logs().map((l) => l.message);
    expect(logged.indexOf('orchestrator serving; consumers joining'), 'serving, then started').to.be.within(0, logged.indexOf('orchestrator started') - 1);
    expect(Number((await throttled).response.PaymentID), 'a payment for the throttled booking').to.be.greaterThan(0);

    // (c) Every saga, before the kill and during the join, ended; none lost, no step run twice.
    const ids = [...before, 'during-sync', 'during-throttled', 'during-async'];
    const ended = new Map<string, SagaView>();
    await waitFor(async () => {
      for (const id of ids.filter((i) => !ended.has(i))) {
        const saga = await s.saga(id);
        if (ENDED.includes(saga.status)) ended.set(id, saga);
      }
      return ended.size === ids.length;
    }, 120_000, 'every saga to end').catch((err: Error) => {
      throw new Error(`${err.message}; open: ${ids.filter((i) => !ended.has(i)).join(', ')}`);
    });
    for (const id of ['during-sync', 'during-throttled', 'during-async']) expect(ended.get(id)!.status, id).to.equal('COMPLETED');
    const ledger = await s.ledger();
    const upstream = await s.upstreamCalls();
    const callsWith = (key: string) => Object.values(upstream.get(key) ?? {}).reduce((a, b) => a + b, 0);
    const wrong: string[] = [];
    for (const [id, saga] of ended) {
      const { orders, payments } = ledger.get(id) ?? { orders: [], payments: [] };
      if (saga.status === 'COMPLETED' && (orders.join() !== 'CREATED' || payments.join() !== 'PAID')) wrong.push(`${id}: ${orders.join()}/${payments.join()}`);
      if (saga.status === 'COMPENSATED' && (orders.some((o) => o !== 'CANCELLED') || payments.some((p) => p !== 'REFUNDED'))) wrong.push(`${id}: ${orders.join()}/${payments.join()}`);
      for (const step of saga.steps as unknown as { name: string; attempts: number; compensation_attempts: number }[]) {
        const runs = callsWith(`${id}:${step.name}`);
        const undos = callsWith(`${id}:${step.name}:compensate`);
        if (runs > step.attempts || undos > step.compensation_attempts) wrong.push(`${id} ${step.name}: ${runs} calls for ${step.attempts} attempts, ${undos} undos for ${step.compensation_attempts}`);
        if (saga.status === 'COMPLETED' && runs === 0) wrong.push(`${id} ${step.name}: never called`);
      }
    }
    expect(wrong, 'sagas whose upstream calls disagree with their record').to.deep.equal([]);
  });
});
