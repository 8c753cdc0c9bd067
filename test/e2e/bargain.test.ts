import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { BARGAIN } from '../../src/examples/bargain/facade';
import type { BargainInput } from '../../src/examples/bargain/input';
import { BARGAIN_EVENTS as E } from '../../src/examples/bargain/nodes';
import type { Ride } from '../../src/examples/bargain/services/drivers-service';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { type FullSaga, SagaHarness } from '../helpers/saga-harness';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

/** Drivers near "Old Town" in batches of two: 1 and 2 in the first batch, 3 and 4 in the second. */
const driver = (n: number) => `old-town-driver-${n}`;
const INPUT: BargainInput = {
  clientId: 'client-1', from: 'Old Town', to: 'Airport', suggestedPrice: 300, batchSize: 2, maxBatches: 3, driverTimeoutMs: 60_000, clientTimeoutMs: 60_000,
};

/** How many visits of `node` the saga has (dispatch, dispatch#2, ...). */
const visits = (saga: FullSaga, node: string) => saga.steps.filter((s) => s.name === node || s.name.startsWith(`${node}#`)).length;

class Harness extends SagaHarness {
  async start(id: string, input: Partial<BargainInput> = {}): Promise<string> {
    return (await this.stack.startSaga(BARGAIN, { ...INPUT, ...input }, this.track(id), 0)).request_id;
  }

  /** Polls until the saga waits at `node`, on its `visit`-th visit of it. */
  async waitingAtVisit(id: string, node: string, visit: number): Promise<FullSaga> {
    return waitFor(async () => {
      const saga = await this.waitingAt(id, node);
      return visits(saga, node) >= visit ? saga : undefined;
    }, 60_000, `saga ${id} to wait at ${node} for the ${visit}th time`);
  }

  /** What the drivers service did for the order: every call, and each driver notified with what became of them. */
  async ride(id: string): Promise<{ calls: string[]; drivers: Record<string, string>; status: string; driver: string; price: number }> {
    const { rides } = (await call<{ rides: Ride[] }>(this.stack.drivers, 'ListRides', {})).response;
    const r = rides.find((x) => x.request_id === id);
    if (!r) throw new Error(`the drivers service has no ride ${id}`);
    return { calls: r.calls, drivers: Object.fromEntries(r.notified.map((n) => [n.driver_id, n.status])), status: r.status, driver: r.driver_id, price: r.price };
  }
}

describe('ride-hailing bargain (seed 000) on Kafka + Postgres', function () {
  this.timeout(120_000);
  const h = new Harness();
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  before(async () => {
    db = await freshDatabase();
    h.stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, bargain: true });
  });
  after(async () => {
    await h.stack?.stop();
    await db?.drop();
  });
  afterEach(async function () {
    await h.report(this);
  });

  it('a driver of the first batch accepts: COMPLETED at the suggested price, the ride assigned, the other driver released', async () => {
    const id = await h.start('ride-accept');
    await h.waitingAt(id, 'await_driver');
    expect((await h.ride(id)).drivers).to.deep.equal({ [driver(1)]: 'NOTIFIED', [driver(2)]: 'NOTIFIED' });
    await h.send(id, E.acceptOrder, { driverId: driver(2) });
    const saga = await h.reaches(id, 'COMPLETED');
    expect(JSON.parse(saga.output_json)).to.deep.equal({ driverId: driver(2), price: 300 });
    expect(await h.ride(id)).to.deep.equal({
      calls: ['DISPATCH', 'ASSIGN'], drivers: { [driver(1)]: 'RELEASED', [driver(2)]: 'ASSIGNED' }, status: 'ASSIGNED', driver: driver(2), price: 300,
    });
  });

  it('no answer within driverTimeoutMs: the next batch is notified (a loop), and one of its drivers accepts', async () => {
    const id = await h.start('ride-next-batch', { driverTimeoutMs: 3_000, maxBatches: 5 });
    await h.waitingAtVisit(id, 'await_driver', 2);
    await h.send(id, E.acceptOrder, { driverId: driver(3) });
    const saga = await h.reaches(id, 'COMPLETED');
    expect(JSON.parse(saga.output_json)).to.deep.equal({ driverId: driver(3), price: 300 });
    // Batch 2's own timer may fire before the event lands on a loaded machine: then more batches are
    // out, and driver 3 (notified in batch 2) may still take the order.
    const batches = saga.steps.filter((s) => s.name.startsWith('dispatch'));
    expect(batches.length).to.be.within(2, 5);
    expect(batches.map((s) => s.status)).to.deep.equal(batches.map(() => 'SUCCEEDED'));
    const notified = Array.from({ length: 2 * batches.length }, (_, i) => i + 1);
    expect(await h.ride(id)).to.deep.include({
      calls: [...batches.map(() => 'DISPATCH'), 'ASSIGN'],
      drivers: Object.fromEntries(notified.map((n) => [driver(n), n === 3 ? 'ASSIGNED' : 'RELEASED'])),
    });
  });

  it('no driver in maxBatches batches: COMPENSATED (DEADLINE_EXCEEDED), every batch released, the newest first', async () => {
    const id = await h.start('ride-nobody', { maxBatches: 2, driverTimeoutMs: 500 });
    const saga = await h.reaches(id, 'COMPENSATED');
    expect(saga.error_code).to.equal('DEADLINE_EXCEEDED');
    expect(saga.error).to.match(/no driver accepted or offered a price in 2 batch/);
    expect(await h.ride(id)).to.deep.include({
      calls: ['DISPATCH', 'DISPATCH', 'RELEASE', 'RELEASE'],
      drivers: { [driver(1)]: 'RELEASED', [driver(2)]: 'RELEASED', [driver(3)]: 'RELEASED', [driver(4)]: 'RELEASED' },
    });
    const undone = saga.history.filter((e) => e.type === 'COMPENSATION_SUCCEEDED').map((e) => e.step);
    expect(undone).to.deep.equal(['dispatch#2', 'dispatch']);
  });

  it('a driver offers a price and the client accepts it: COMPLETED at the offered price', async () => {
    const id = await h.start('ride-offer');
    await h.waitingAt(id, 'await_driver');
    await h.send(id, E.alternativePriceOffered, { driverId: driver(1), price: 350 });
    await h.waitingAt(id, 'await_client');
    await h.send(id, E.clientAccept, { driverId: driver(1) });
    const saga = await h.reaches(id, 'COMPLETED');
    expect(JSON.parse(saga.output_json)).to.deep.equal({ driverId: driver(1), price: 350 });
    expect(await h.ride(id)).to.deep.include({ calls: ['DISPATCH', 'ASSIGN'], status: 'ASSIGNED', driver: driver(1), price: 350 });
  });

  it('a lower offer replaces the first; a higher one, an acceptance of another driver and a stranger are ignored; the client takes the lower', async () => {
    const id = await h.start('ride-lower');
    await h.waitingAt(id, 'await_driver');
    await h.send(id, E.alternativePriceOffered, { driverId: driver(1), price: 350 });
    await h.waitingAtVisit(id, 'await_client', 1);
    await h.send(id, E.alternativePriceOffered, { driverId: driver(2), price: 320 });
    await h.waitingAtVisit(id, 'await_client', 2);
    expect(JSON.parse((await h.saga(id)).steps.find((s) => s.name === 'offer#2')!.output_json)).to.include({ driverId: driver(2), price: 320 });
    // Each of these is taken by the client's race and ignored: it waits again, the offer unchanged.
    await h.send(id, E.alternativePriceOffered, { driverId: driver(1), price: 400 });
    await h.waitingAtVisit(id, 'await_client', 3);
    await h.send(id, E.clientAccept, { driverId: driver(1) });
    await h.waitingAtVisit(id, 'await_client', 4);
    await h.send(id, E.alternativePriceOffered, { driverId: 'stranger', price: 1 });
    await h.waitingAtVisit(id, 'await_client', 5);
    await h.send(id, E.clientAccept, { driverId: driver(2) });
    const saga = await h.reaches(id, 'COMPLETED');
    expect(JSON.parse(saga.output_json)).to.deep.equal({ driverId: driver(2), price: 320 });
    expect(await h.ride(id)).to.deep.include({ calls: ['DISPATCH', 'ASSIGN'], drivers: { [driver(1)]: 'RELEASED', [driver(2)]: 'ASSIGNED' }, price: 320 });
  });

  it('the client does not decide within clientTimeoutMs: COMPENSATED (cancelled), the drivers released', async () => {
    const id = await h.start('ride-client-late', { clientTimeoutMs: 800 });
    await h.waitingAt(id, 'await_driver');
    await h.send(id, E.alternativePriceOffered, { driverId: driver(2), price: 310 });
    const saga = await h.reaches(id, 'COMPENSATED');
    expect(saga.error_code).to.equal('DEADLINE_EXCEEDED');
    expect(saga.error).to.match(/the client did not accept an offer within clientTimeoutMs/);
    expect(await h.ride(id)).to.deep.include({ calls: ['DISPATCH', 'RELEASE'], drivers: { [driver(1)]: 'RELEASED', [driver(2)]: 'RELEASED' } });
  });

  for (const [where, by] of [['while the drivers are asked', 'client'], ['while the client decides', 'driver']] as const) {
    it(`cancel from the ${by} ${where}: COMPENSATED (CANCELLED), the canceller's payload on record, the drivers released`, async () => {
      const id = await h.start(`ride-cancel-${by}`);
      await h.waitingAt(id, 'await_driver');
      if (by === 'driver') {
        await h.send(id, E.alternativePriceOffered, { driverId: driver(1), price: 330 });
        await h.waitingAt(id, 'await_client');
      }
      await h.send(id, E.cancel, { by, reason: `${by} changed their mind` });
      const saga = await h.reaches(id, 'COMPENSATED');
      expect(saga.error_code).to.equal('CANCELLED');
      expect(saga.error).to.include(`${by} changed their mind`);
      const received = saga.history.find((e) => e.type === 'EVENT_RECEIVED' && (e.detail ?? '').includes(`"event":"${E.cancel}"`));
      expect(received?.detail, 'the cancel event in the history').to.include(`${by} changed their mind`);
      expect(await h.ride(id)).to.deep.include({ calls: ['DISPATCH', 'RELEASE'], drivers: { [driver(1)]: 'RELEASED', [driver(2)]: 'RELEASED' } });
    });
  }

  it('an event after the bargain ended is refused with FAILED_PRECONDITION; an invalid input with INVALID_ARGUMENT naming the field', async () => {
    const id = await h.start('ride-over');
    await h.waitingAt(id, 'await_driver');
    await h.send(id, E.acceptOrder, { driverId: driver(1) });
    await h.reaches(id, 'COMPLETED');
    expect((await rejectionOf(h.send(id, E.cancel, { by: 'client', reason: 'late' }))).code).to.equal(grpc.status.FAILED_PRECONDITION);
    const err = await rejectionOf(h.start('ride-bad', { suggestedPrice: -1 }));
    expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err.message).to.match(/suggestedPrice/);
  });
});
