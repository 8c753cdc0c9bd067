import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { ORDER_DELIVERY } from '../../src/examples/delivery/facade';
import type { DeliveryInput } from '../../src/examples/delivery/input';
import { DELIVERY_EVENTS as E } from '../../src/examples/delivery/nodes';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { type FullSaga, SagaHarness } from '../helpers/saga-harness';
import { call, Stack } from '../helpers/stack';
import { rejectionOf } from '../helpers/wait';

type Saga = FullSaga;

const V1_PATH = [E.orderReceived, E.delivering, E.delivered] as const;
const V2_PATH = [E.orderReceived, E.packed, E.delivering, E.delivered] as const;
const ALL_EVENTS = Object.values(E);

/** The steering of an order, and what the warehouse did for it. */
class Harness extends SagaHarness {
  order(id: string): string {
    return this.track(id);
  }

  async start(orderId: string, input: DeliveryInput = { items: ['sku-1', 'sku-2'], paymentTimeoutMs: 60_000 }, version = 0): Promise<string> {
    return (await this.stack.startSaga(ORDER_DELIVERY, input, this.order(orderId), version)).request_id;
  }

  /** A deployment: the process stops (SIGTERM), one with these versions starts under the same pod id and store. */
  async restartWith(versions: string): Promise<void> {
    this.stack.orchestrator.kill('SIGTERM');
    await this.stack.orchestrator.exited;
    await this.stack.startOrchestrator('e2e', { OCH_DELIVERY_VERSIONS: versions });
  }

  /** Sends `event`, expects it refused with FAILED_PRECONDITION naming the state, and the saga unchanged. */
  async refused(orderId: string, event: string, state: string, accepts: readonly string[]): Promise<void> {
    const before = await this.saga(orderId);
    const err = await rejectionOf(this.send(orderId, event));
    expect(err.code, `${event} at ${state}: ${err.message}`).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(err.message).to.include(`waiting at ${state}: it does not accept ${event} now; it accepts ${accepts.join(', ')}`);
    const after = await this.saga(orderId);
    expect([after.status, after.revision, after.history.length], `order ${orderId} after ${event}`).to.deep.equal([before.status, before.revision, before.history.length]);
  }

  /** The order's reservation in the warehouse: its status and every Reserve/Release call for it. */
  async reservation(orderId: string): Promise<{ status: string; calls: string[]; items: string[] } | undefined> {
    const { reservations } = (await call<{ reservations: { request_id: string; status: string; calls: string[]; items: string[] }[] }>(this.stack.warehouse, 'ListReservations', {})).response;
    const r = reservations.find((x) => x.request_id === orderId);
    return r && { status: r.status, calls: r.calls, items: r.items };
  }
}

describe('order delivery (seed 004) on Kafka + Postgres', function () {
  this.timeout(120_000);
  const h = new Harness();
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  before(async () => {
    db = await freshDatabase();
    h.stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, delivery: true });
  });
  after(async () => {
    await h.stack?.stop();
    await db?.drop();
  });
  afterEach(async function () {
    await h.report(this);
  });

  it('happy path on version 2: each event in order, COMPLETED; the items stay reserved', async () => {
    const id = await h.start('order-happy');
    expect(id).to.equal('order-happy');
    await h.waitingAt(id, 'payment');
    expect((await h.saga(id)).version).to.equal(2);
    await h.send(id, E.paymentMade, { amount: 1_999 });
    for (const event of V2_PATH) {
      await h.waitingAt(id, event);
      await h.send(id, event);
    }
    const saga = (await h.stack.sagaReaches(id, 'COMPLETED', 60_000)) as Saga;
    expect(saga.steps.map((s) => s.name)).to.deep.equal(['checkout', 'payment', ...V2_PATH]);
    expect(JSON.parse(saga.output_json)).to.have.property('reservationId').that.matches(/^reservation-/);
    expect(await h.reservation(id)).to.deep.equal({ status: 'RESERVED', calls: ['RESERVE'], items: ['sku-1', 'sku-2'] });
  });

  it('payment_cancelled: COMPENSATED, the items released', async () => {
    const id = await h.start('order-cancelled');
    await h.waitingAt(id, 'payment');
    await h.send(id, E.paymentCancelled, { by: 'user' });
    const saga = (await h.stack.sagaReaches(id, 'COMPENSATED', 60_000)) as Saga;
    expect(saga.error_code).to.equal('CANCELLED');
    expect(saga.error).to.match(/payment cancelled/);
    expect(await h.reservation(id)).to.deep.equal({ status: 'RELEASED', calls: ['RESERVE', 'RELEASE'], items: ['sku-1', 'sku-2'] });
  });

  it('no payment within paymentTimeoutMs: COMPENSATED as expired, the items released', async () => {
    const id = await h.start('order-unpaid', { items: ['sku-9'], paymentTimeoutMs: 1_500 });
    const saga = (await h.stack.sagaReaches(id, 'COMPENSATED', 60_000)) as Saga;
    expect(saga.error_code).to.equal('DEADLINE_EXCEEDED');
    expect(saga.error).to.match(/payment expired/);
    expect(await h.reservation(id)).to.deep.equal({ status: 'RELEASED', calls: ['RESERVE', 'RELEASE'], items: ['sku-9'] });
  });

  it('strict: every out-of-order event is refused with FAILED_PRECONDITION naming the state and what it accepts, and changes nothing', async () => {
    const id = await h.start('order-strict');
    // The states in order, each with what it accepts; every other event of the facade is refused there.
    const states: [string, string[]][] = [['payment', [E.paymentMade, E.paymentCancelled]], ...V2_PATH.map((e): [string, string[]] => [e, [e]])];
    for (const [state, accepts] of states) {
      await h.waitingAt(id, state);
      for (const event of ALL_EVENTS.filter((e) => !accepts.includes(e))) await h.refused(id, event, state, accepts);
      await h.send(id, accepts[0]);
    }
    const saga = (await h.stack.sagaReaches(id, 'COMPLETED', 60_000)) as Saga;
    expect(saga.steps.map((s) => s.name)).to.deep.equal(['checkout', 'payment', ...V2_PATH]);
    // Finished: nothing moves it any more.
    const err = await rejectionOf(h.send(id, E.delivered));
    expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
  });

  it('the order id is the key: starting the same order twice returns the first saga (one reservation)', async () => {
    await h.start('order-twice', { items: ['first'], paymentTimeoutMs: 60_000 });
    expect(await h.start('order-twice', { items: ['second'], paymentTimeoutMs: 60_000 })).to.equal('order-twice');
    await h.waitingAt('order-twice', 'payment');
    const saga = await h.saga('order-twice');
    expect(JSON.parse(saga.input_json as string)).to.deep.equal({ items: ['first'], paymentTimeoutMs: 60_000 });
    expect(await h.reservation('order-twice')).to.deep.equal({ status: 'RESERVED', calls: ['RESERVE'], items: ['first'] });
  });

  it('an invalid input is refused with INVALID_ARGUMENT naming the field', async () => {
    const err = await rejectionOf(h.start('order-bad', { items: [], paymentTimeoutMs: 1_000 }));
    expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err.message).to.match(/items:/);
  });
});

describe('order delivery: version 2 deployed while version 1 orders run (Kafka + Postgres)', function () {
  this.timeout(180_000);
  const h = new Harness();
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const OLD = ['order-v1-a', 'order-v1-b', 'order-v1-c'];
  const NEW = ['order-v2-a', 'order-v2-b', 'order-v2-c'];

  before(async () => {
    db = await freshDatabase();
    h.stack = await Stack.start({
      transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, delivery: true,
      orchestratorEnv: { OCH_DELIVERY_VERSIONS: '1' },
    });
  });
  after(async () => {
    await h.stack?.stop();
    await db?.drop();
  });
  afterEach(async function () {
    await h.report(this);
  });

  it('old orders finish on version 1 (no packed), new ones on version 2 (packed required)', async () => {
    for (const id of OLD) await h.start(id);
    for (const id of OLD) await h.waitingAt(id, 'payment');
    for (const id of OLD) expect((await h.saga(id)).version, id).to.equal(1);
    expect((await rejectionOf(h.start('order-v2-early', undefined, 2))).code).to.equal(grpc.status.NOT_FOUND);

    // The deployment: the process stops, a new one with versions 1 and 2 starts (same pod id, same store).
    await h.restartWith('1,2');

    for (const id of NEW) await h.start(id);
    for (const id of NEW) expect((await h.waitingAt(id, 'payment')).version, id).to.equal(2);

    for (const id of [...OLD, ...NEW]) await h.send(id, E.paymentMade);
    for (const id of [...OLD, ...NEW]) await h.waitingAt(id, E.orderReceived);
    for (const id of [...OLD, ...NEW]) await h.send(id, E.orderReceived);
    // Version 1 goes straight to delivering; version 2 waits for packed first.
    for (const id of OLD) await h.waitingAt(id, E.delivering);
    for (const id of NEW) await h.waitingAt(id, E.packed);
    for (const id of NEW) await h.refused(id, E.delivering, E.packed, [E.packed]);
    // Version 1 has no packed: refused, and the order unchanged (the code is checked in the next test).
    for (const id of OLD) {
      const before = await h.saga(id);
      await rejectionOf(h.send(id, E.packed));
      const after = await h.saga(id);
      expect([after.status, after.revision, after.history.length], id).to.deep.equal([before.status, before.revision, before.history.length]);
    }
    for (const id of NEW) await h.send(id, E.packed);
    for (const id of [...OLD, ...NEW]) await h.waitingAt(id, E.delivering);
    for (const id of [...OLD, ...NEW]) await h.send(id, E.delivering);
    for (const id of [...OLD, ...NEW]) await h.waitingAt(id, E.delivered);
    for (const id of [...OLD, ...NEW]) await h.send(id, E.delivered);

    for (const id of OLD) {
      const saga = (await h.stack.sagaReaches(id, 'COMPLETED', 60_000)) as Saga;
      expect([saga.version, saga.steps.map((s) => s.name)], id).to.deep.equal([1, ['checkout', 'payment', ...V1_PATH]]);
    }
    for (const id of NEW) {
      const saga = (await h.stack.sagaReaches(id, 'COMPLETED', 60_000)) as Saga;
      expect([saga.version, saga.steps.map((s) => s.name)], id).to.deep.equal([2, ['checkout', 'payment', ...V2_PATH]]);
    }
  });

  it('rolled back to version 1 only: version 2 orders are left alone (GetSaga and ListSagas say why), and finished once version 2 is back', async () => {
    const id = await h.start('order-v2-rollback', undefined, 2);
    await h.waitingAt(id, 'payment');
    await h.restartWith('1');
    const alone = await h.saga(id);
    expect(alone.left_alone).to.match(/this instance does not have OrderDelivery version 2 \(it has version 1\): an instance that has it drives this saga/);
    expect([alone.status, alone.mermaid, alone.nodes]).to.deep.equal(['RUNNING', '', []]);
    const listed = (await call<{ sagas: { request_id: string; version: number; left_alone: string }[] }>(h.stack.sagas, 'ListSagas', { facade: ORDER_DELIVERY, page_size: 100 })).response.sagas;
    expect(listed.find((s) => s.request_id === id)?.left_alone).to.equal(alone.left_alone);
    expect(listed.filter((s) => s.version === 1).map((s) => s.left_alone), 'version 1 orders are driven here').to.include('').and.not.include(alone.left_alone);
    const refused = await rejectionOf(h.send(id, E.paymentMade));
    expect([refused.code, refused.message]).to.deep.equal([grpc.status.NOT_FOUND, '5 NOT_FOUND: facade OrderDelivery version 2 not found (this instance has version 1)']);
    expect((await h.saga(id)).revision).to.equal(alone.revision);

    await h.restartWith('1,2');
    expect((await h.saga(id)).left_alone).to.equal('');
    await h.send(id, E.paymentMade);
    for (const event of V2_PATH) {
      await h.waitingAt(id, event);
      await h.send(id, event);
    }
    expect((await h.reaches(id, 'COMPLETED')).steps.map((s) => s.name)).to.deep.equal(['checkout', 'payment', ...V2_PATH]);
  });

  it('packed on a version 1 order is refused with FAILED_PRECONDITION naming its state, and changes nothing', async () => {
    const id = await h.start('order-v1-packed', undefined, 1);
    await h.waitingAt(id, 'payment');
    await h.send(id, E.paymentMade);
    await h.waitingAt(id, E.orderReceived);
    await h.send(id, E.orderReceived);
    await h.waitingAt(id, E.delivering);
    await h.refused(id, E.packed, E.delivering, [E.delivering]);
  });
});
