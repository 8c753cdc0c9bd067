import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { ASYNC_BOOKING, SYNC_BOOKING, THROTTLED_BOOKING } from '../../src/examples/booking/facades';
import { TRANSFER } from '../../src/examples/transfer/facade';
import type { TransferInput } from '../../src/examples/transfer/input';
import { TOPICS } from '../../topics/topics';
import { KAFKA_BROKERS, testKafka, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { scrape, seriesSum, sumOf, type Sample } from '../helpers/prometheus';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

const SYNC_OK = 4;
const SYNC_FAILED = 3;
const ASYNC_OK = 2;

/**
 * Known traffic through a stack on Kafka + Postgres, then GET /metrics: each series counts what
 * was done. Sync bookings that complete and that are compensated, async ones, a throttled call
 * refused, a Transfer parked at its webhook and one whose wait times out (the gateway refuses the
 * first call of each: a retry each), a poison message.
 */
describe('Prometheus metrics on Kafka + Postgres', function () {
  this.timeout(180_000);
  const names = uniqueKafkaNames();
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let samples: Sample[] = [];
  let text = '';
  // Every sum first checks that its series exists: the zero checks would pass on a missing one.
  const sum = (name: string, labels: Record<string, string> = {}) => seriesSum(text, samples, name, labels);

  before(async () => {
    db = await freshDatabase();
    stack = await Stack.start({
      transport: 'kafka', kafka: { ...names, brokers: KAFKA_BROKERS }, postgres: db.dsn, transfer: { gatewayUnavailableFirst: 1 },
      extraYaml: 'throttle: { maxConcurrent: 1, maxQueue: 0 }',
    });
    const s = stack;
    await Promise.all(Array.from({ length: SYNC_OK }, (_, i) => call(s.booking, 'HandleSyncBooking', { ProductID: '1' }, { 'x-request-id': `m-ok-${i}` })));
    const aborted = await Promise.all(Array.from({ length: SYNC_FAILED }, (_, i) =>
      rejectionOf(call(s.booking, 'HandleSyncBooking', { ProductID: '1', FaultInject: true }, { 'x-request-id': `m-fail-${i}` }))));
    expect(aborted.map((e) => e.code)).to.deep.equal(Array(SYNC_FAILED).fill(grpc.status.ABORTED));
    await Promise.all(Array.from({ length: ASYNC_OK }, (_, i) => call(s.booking, 'HandleAsyncBooking', { ProductID: '1' }, { 'x-request-id': `m-async-${i}` })));

    // One throttled call holds the only slot (no queue): a second one is refused.
    const held = call(s.booking, 'HandleThrottlingBooking', { ProductID: '1', DelayMs: '1500' }, { 'x-request-id': 'm-throttled' });
    await waitFor(async () => (await s.saga('m-throttled')).status === 'RUNNING', 10_000, 'the throttled saga to run');
    const refused = await rejectionOf(call(s.booking, 'HandleThrottlingBooking', { ProductID: '1' }, { 'x-request-id': 'm-refused' }));
    expect(refused.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    await held;

    const transfer = (webhookTimeoutMs: number): TransferInput => ({ from: 'alice', to: 'bob', amount: 100, webhookTimeoutMs });
    await s.startSaga(TRANSFER, transfer(600_000), 'm-parked');
    await s.startSaga(TRANSFER, transfer(1_500), 'm-timeout');

    const producer = testKafka().producer();
    await producer.connect();
    await producer.send({ topic: names.topicPrefix + TOPICS.bookingAsyncCreateOrder.name, messages: [{ key: 'm-junk', value: 'not json' }] });
    await producer.disconnect();

    for (let i = 0; i < SYNC_FAILED; i++) await s.sagaReaches(`m-fail-${i}`, 'COMPENSATED', 30_000);
    for (let i = 0; i < ASYNC_OK; i++) await s.sagaReaches(`m-async-${i}`, 'COMPLETED', 30_000);
    await s.sagaReaches('m-timeout', 'COMPENSATED', 30_000);
    await waitFor(async () => (await s.saga('m-parked')).steps.some((v) => v.name === 'webhook' && v.status === 'STEP_WAITING'), 30_000, 'm-parked to wait for its webhook');
    // The poison message is dead-lettered once the async create-order consumer gets to it.
    const scraped = await waitFor(async () => {
      const r = await scrape(s.ports.http);
      return sumOf(r.samples, 'och_dead_letters_total') >= 1 ? r : undefined;
    }, 30_000, 'the poison message to be dead-lettered');
    ({ samples, text } = scraped);
    expect(scraped.contentType).to.match(/^text\/plain; version=0\.0\.4/);
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
  });

  it('counts sagas started and ended by facade, version and status, with their durations', () => {
    expect(sum('och_sagas_started_total', { facade: SYNC_BOOKING, version: '1' })).to.equal(SYNC_OK + SYNC_FAILED);
    expect(sum('och_sagas_started_total', { facade: ASYNC_BOOKING })).to.equal(ASYNC_OK);
    expect(sum('och_sagas_started_total', { facade: THROTTLED_BOOKING }), 'the refused call starts none').to.equal(1);
    expect(sum('och_sagas_started_total', { facade: TRANSFER })).to.equal(2);
    expect(sum('och_sagas_ended_total', { facade: SYNC_BOOKING, status: 'COMPLETED' })).to.equal(SYNC_OK);
    expect(sum('och_sagas_ended_total', { facade: SYNC_BOOKING, status: 'COMPENSATED' })).to.equal(SYNC_FAILED);
    expect(sum('och_sagas_ended_total', { facade: ASYNC_BOOKING, status: 'COMPLETED' })).to.equal(ASYNC_OK);
    expect(sum('och_sagas_ended_total', { facade: THROTTLED_BOOKING, status: 'COMPLETED' })).to.equal(1);
    expect(sum('och_sagas_ended_total', { facade: TRANSFER }), 'the parked one has not ended').to.equal(1);
    expect(sum('och_sagas_ended_total', { status: 'COMPENSATION_FAILED' })).to.equal(0);
    expect(sum('och_saga_duration_seconds_count', { facade: SYNC_BOOKING, status: 'COMPENSATED' })).to.equal(SYNC_FAILED);
    // The throttled saga's payment waited 1.5 s.
    expect(sum('och_saga_duration_seconds_sum', { facade: THROTTLED_BOOKING })).to.be.within(1.5, 30);
    expect(sum('och_saga_duration_seconds_bucket', { facade: THROTTLED_BOOKING, status: 'COMPLETED', le: '1' })).to.equal(0);
  });

  it('times step attempts by facade, node and outcome, and counts retries, aborts and compensations', () => {
    expect(sum('och_step_attempt_duration_seconds_count', { facade: SYNC_BOOKING, node: 'createOrder', outcome: 'succeeded' })).to.equal(SYNC_OK + SYNC_FAILED);
    expect(sum('och_step_attempt_duration_seconds_count', { facade: SYNC_BOOKING, node: 'createPayment', outcome: 'succeeded' })).to.equal(SYNC_OK);
    expect(sum('och_step_attempt_duration_seconds_count', { facade: SYNC_BOOKING, node: 'createPayment', outcome: 'failed' })).to.equal(SYNC_FAILED);
    expect(sum('och_step_attempt_duration_seconds_count', { facade: ASYNC_BOOKING, node: 'createPayment', outcome: 'succeeded' })).to.equal(ASYNC_OK);
    // Each transfer's first gateway call is refused (UNAVAILABLE), then retried.
    expect(sum('och_step_retries_total', { facade: TRANSFER, node: 'gateway' })).to.equal(2);
    expect(sum('och_step_attempt_duration_seconds_count', { facade: TRANSFER, node: 'gateway', outcome: 'retried' })).to.equal(2);
    expect(sum('och_step_attempt_duration_seconds_count', { facade: TRANSFER, node: 'gateway', outcome: 'succeeded' })).to.equal(2);
    // The timed-out wait: one attempt of the webhook, failed after about 1.5 s.
    expect(sum('och_step_attempt_duration_seconds_count', { facade: TRANSFER, node: 'webhook', outcome: 'failed' })).to.equal(1);
    expect(sum('och_step_attempt_duration_seconds_sum', { facade: TRANSFER, node: 'webhook', outcome: 'failed' })).to.be.within(1.4, 30);
    expect(sum('och_saga_aborts_total', { facade: SYNC_BOOKING, node: 'createPayment', code: 'FAILED_PRECONDITION' })).to.equal(SYNC_FAILED);
    expect(sum('och_saga_aborts_total', { facade: TRANSFER, node: 'webhook', code: 'DEADLINE_EXCEEDED' })).to.equal(1);
    expect(sum('och_compensations_total', { facade: SYNC_BOOKING, node: 'createOrder' })).to.equal(SYNC_FAILED);
    expect(sum('och_compensations_total', { facade: SYNC_BOOKING, node: 'createPayment' })).to.equal(SYNC_FAILED);
    expect(sum('och_compensations_total', { facade: TRANSFER, node: 'debit' }), 'the refund').to.equal(1);
    expect(sum('och_compensation_failures_total')).to.equal(0);
    // Retry timers and the webhook's timeout fired from the store.
    expect(sum('och_timer_lateness_seconds_count')).to.be.at.least(1);
  });

  it('reports sagas in flight and parked, and timers, from the store', () => {
    expect(sum('och_sagas_in_flight', { facade: TRANSFER, version: '1', status: 'RUNNING' })).to.equal(1);
    expect(sum('och_sagas_in_flight', { facade: SYNC_BOOKING })).to.equal(0);
    expect(sum('och_sagas_parked', { facade: TRANSFER, reason: 'waiting' })).to.equal(1);
    expect(sum('och_sagas_parked')).to.equal(1);
    expect(samples.some((s) => s.name === 'och_timers_due'), 'och_timers_due').to.equal(true);
    expect(sum('och_timers_overdue')).to.equal(0);
  });

  it('counts throttle rejections and shows the throttle idle again', () => {
    expect(sum('och_throttle_rejections_total', { facade: THROTTLED_BOOKING })).to.equal(1);
    expect(sum('och_throttle_running')).to.equal(0);
    expect(sum('och_throttle_queue_depth')).to.equal(0);
  });

  it('times Kafka publishes and the store by topic and operation, with the group-commit batch sizes and consumer lag', () => {
    // At least: recovery may publish a message again (a lease lapsed on a slow host).
    expect(sum('och_kafka_publish_duration_seconds_count', { topic: TOPICS.bookingAsyncCreatePayment.name, outcome: 'ok' })).to.be.at.least(ASYNC_OK);
    expect(sum('och_kafka_publish_duration_seconds_count', { topic: TOPICS.bookingSyncRollback.name, outcome: 'ok' })).to.be.at.least(SYNC_FAILED);
    expect(sum('och_kafka_publish_duration_seconds_count', { topic: TOPICS.bookingThrottledCreatePayment.name, outcome: 'ok' })).to.be.at.least(1);
    expect(sum('och_kafka_publish_duration_seconds_count', { topic: TOPICS.hammerHammer.name }), 'no hammer ran').to.equal(0);
    expect(sum('och_kafka_publish_duration_seconds_count', { outcome: 'error' })).to.equal(0);
    expect(sum('och_kafka_consumer_lag_messages', { topic: TOPICS.bookingAsyncCreatePayment.name })).to.equal(0);
    expect(samples.some((s) => s.name === 'och_kafka_consumer_lag_messages' && s.labels.topic === TOPICS.bookingSyncRollback.name)).to.equal(true);
    // Every saga created went through one create statement; saves and gets too.
    const created = sum('och_store_batch_size_sum', { operation: 'create' });
    expect(created).to.equal(SYNC_OK + SYNC_FAILED + ASYNC_OK + 1 + 2);
    expect(sum('och_store_batch_size_count', { operation: 'create' })).to.be.within(1, created);
    expect(sum('och_store_operation_duration_seconds_count', { operation: 'create', outcome: 'ok' })).to.equal(sum('och_store_batch_size_count', { operation: 'create' }));
    expect(sum('och_store_operation_duration_seconds_count', { operation: 'save', outcome: 'ok' })).to.be.greaterThan(0);
    expect(sum('och_store_operation_duration_seconds_count', { operation: 'claim' }), 'the recovery loop').to.be.greaterThan(0);
  });

  it('counts dead-lettered messages by topic and reason', () => {
    expect(sum('och_dead_letters_total', { topic: TOPICS.bookingAsyncCreateOrder.name, reason: 'poison' })).to.equal(1);
    expect(sum('och_dead_letters_total')).to.equal(1);
  });

  it('has Node\'s process metrics, and no request id in any label', () => {
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(samples.some((s) => s.name === name), name).to.equal(true);
    }
    for (const id of ['m-ok-0', 'm-fail-0', 'm-async-0', 'm-throttled', 'm-refused', 'm-parked', 'm-timeout', 'm-junk']) expect(text).not.to.include(id);
  });
});

describe('metrics switched off (OCH_METRICS_ENABLED=false)', function () {
  this.timeout(60_000);

  it('/metrics answers 404 naming the switch; sagas and probes work as before', async () => {
    const stack = await Stack.start({ transport: 'memory', orchestratorEnv: { OCH_METRICS_ENABLED: 'false' } });
    try {
      await call(stack.booking, 'HandleSyncBooking', { ProductID: '1' }, { 'x-request-id': 'off-1' });
      const r = await scrape(stack.ports.http);
      expect(r.status).to.equal(404);
      expect(r.text).to.include('metrics.enabled');
      expect((await fetch(`http://127.0.0.1:${stack.ports.http}/healthz`)).status).to.equal(200);
    } finally {
      await stack.stop();
    }
  });
});
