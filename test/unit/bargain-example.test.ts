import { expect } from 'chai';
import { ValidationError } from '../../src/engine/errors';
import type { BranchContext, StepDefinition, WaitDefinition } from '../../src/engine/facade';
import { checkFacade } from '../../src/engine/graph';
import { createBargainClients, type BargainClients } from '../../src/examples/bargain/clients';
import { BARGAIN, bargainFacade } from '../../src/examples/bargain/facade';
import { BARGAIN_DEFAULTS, parseBargainInput, type BargainInput } from '../../src/examples/bargain/input';
import { BARGAIN_EVENTS as E, type Dispatched, type Match, type Offer } from '../../src/examples/bargain/nodes';
import { Drivers, driversNear } from '../../src/examples/bargain/services/drivers-service';
import { nodeContext, serveDrivers, type InProcessService } from '../helpers/demo-services';
import { rejectionOf } from '../helpers/wait';

const INPUT: BargainInput = { clientId: 'c1', from: 'Old Town', to: 'Airport', suggestedPrice: 300, batchSize: 2, maxBatches: 3, driverTimeoutMs: 1_000, clientTimeoutMs: 2_000 };

describe('bargain example: input', () => {
  it('takes the contract\'s fields; the batch and timeout settings have defaults', () => {
    expect(parseBargainInput(INPUT)).to.deep.equal(INPUT);
    expect(parseBargainInput({ clientId: 'c', from: 'a', to: 'b', suggestedPrice: 12.5 })).to.deep.equal({ clientId: 'c', from: 'a', to: 'b', suggestedPrice: 12.5, ...BARGAIN_DEFAULTS });
  });

  const bad: [string, unknown, string][] = [
    ['no object', 'ride', 'input'],
    ['no clientId', { ...INPUT, clientId: undefined }, 'clientId'],
    ['an empty from', { ...INPUT, from: ' ' }, 'from'],
    ['a number to', { ...INPUT, to: 7 }, 'to'],
    ['no suggestedPrice', { ...INPUT, suggestedPrice: undefined }, 'suggestedPrice'],
    ['a zero suggestedPrice', { ...INPUT, suggestedPrice: 0 }, 'suggestedPrice'],
    ['a text suggestedPrice', { ...INPUT, suggestedPrice: '300' }, 'suggestedPrice'],
    ['a zero batchSize', { ...INPUT, batchSize: 0 }, 'batchSize'],
    ['a fractional maxBatches', { ...INPUT, maxBatches: 1.5 }, 'maxBatches'],
    ['too many batches', { ...INPUT, maxBatches: 21 }, 'maxBatches'],
    ['a negative driverTimeoutMs', { ...INPUT, driverTimeoutMs: -1 }, 'driverTimeoutMs'],
    ['a clientTimeoutMs over 10 minutes', { ...INPUT, clientTimeoutMs: 600_001 }, 'clientTimeoutMs'],
  ];
  for (const [what, raw, field] of bad) {
    it(`rejects ${what}, naming ${field}`, () => {
      expect(() => parseBargainInput(raw)).to.throw(ValidationError).with.property('field', field);
    });
  }
});

describe('bargain example: the graph and its decisions', () => {
  const def = bargainFacade({ drivers: undefined as never, close: () => undefined });
  const node = (name: string) => def.nodes.find((n) => n.name === name)!;
  const race = (name: string) => node(name) as WaitDefinition<BargainInput>;
  const batch1: Dispatched = { batch: 1, driverIds: ['d1', 'd2'], notified: ['d1', 'd2'], dispatchedAt: Date.now() };
  const ctx = (results: Record<string, unknown>): BranchContext<BargainInput> => ({ requestId: 'r', input: INPUT, results, visit: 1 });

  it('dispatch → await_driver (loop back to dispatch) → offer ⇄ await_client → assign; async, cancel at any moment, checked by the engine', () => {
    expect(def).to.include({ name: BARGAIN, version: 1, mode: 'async', cancelEvent: E.cancel });
    expect(def.nodes.map((n) => [n.name, n.kind ?? 'step', n.after ?? [], n.branches ?? []])).to.deep.equal([
      ['dispatch', 'step', [], []],
      ['await_driver', 'wait', ['dispatch'], ['await_driver', 'dispatch', 'offer', 'assign']],
      ['offer', 'step', [], []],
      ['await_client', 'wait', ['offer'], ['await_client', 'offer', 'assign']],
      ['assign', 'step', [], []],
    ]);
    expect(checkFacade(def).roots.map((r) => r.name)).to.deep.equal(['dispatch']);
  });

  it('the drivers\' race: accept → assign, a price → offer, a timeout → the next batch until maxBatches, then fails', () => {
    const r = race('await_driver');
    expect(r.events).to.deep.equal([E.acceptOrder, E.alternativePriceOffered]);
    expect(r.next!({ event: E.acceptOrder, payload: { driverId: 'd2' } }, ctx({ dispatch: batch1 }))).to.equal('assign');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'd1', price: 350 } }, ctx({ dispatch: batch1 }))).to.equal('offer');
    expect(r.next!({ event: 'timeout' }, ctx({ dispatch: batch1 }))).to.equal('dispatch');
    expect(() => r.next!({ event: 'timeout' }, ctx({ dispatch: { ...batch1, batch: 3 } }))).to.throw(/no driver accepted or offered a price in 3 batch/).with.property('code', 'DEADLINE_EXCEEDED');
  });

  it('the drivers\' race ignores a driver never notified and an offer without a positive price (it waits again)', () => {
    const r = race('await_driver');
    expect(r.next!({ event: E.acceptOrder, payload: { driverId: 'stranger' } }, ctx({ dispatch: batch1 }))).to.equal('await_driver');
    expect(r.next!({ event: E.acceptOrder, payload: {} }, ctx({ dispatch: batch1 }))).to.equal('await_driver');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'd1', price: -5 } }, ctx({ dispatch: batch1 }))).to.equal('await_driver');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'd1', price: '350' } }, ctx({ dispatch: batch1 }))).to.equal('await_driver');
  });

  it('the drivers\' race times out at the batch\'s deadline, also when it waits again after an ignored answer', () => {
    const timeout = race('await_driver').timeoutMs as (i: BargainInput, r: Record<string, unknown>) => number;
    const left = timeout(INPUT, { dispatch: { ...batch1, dispatchedAt: Date.now() - 400 } });
    expect(left).to.be.within(500, 600);
  });

  it('the client\'s race: accepting the offer\'s driver → assign, a lower price → offer, anything else waits again, a timeout fails', () => {
    const r = race('await_client');
    const offer: Offer = { driverId: 'd1', price: 350, offeredAt: Date.now() };
    const results = { dispatch: batch1, offer };
    expect(r.events).to.deep.equal([E.clientAccept, E.alternativePriceOffered]);
    expect(r.next!({ event: E.clientAccept, payload: { driverId: 'd1' } }, ctx(results))).to.equal('assign');
    expect(r.next!({ event: E.clientAccept, payload: { driverId: 'd2' } }, ctx(results))).to.equal('await_client');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'd2', price: 320 } }, ctx(results))).to.equal('offer');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'd2', price: 350 } }, ctx(results))).to.equal('await_client');
    expect(r.next!({ event: E.alternativePriceOffered, payload: { driverId: 'stranger', price: 1 } }, ctx(results))).to.equal('await_client');
    expect(() => r.next!({ event: 'timeout' }, ctx(results))).to.throw(/did not accept an offer within clientTimeoutMs/).with.property('code', 'DEADLINE_EXCEEDED');
  });

  it('offer puts the newest winning price on the table: the drivers\' race first, then the client\'s', async () => {
    const offer = node('offer') as StepDefinition<BargainInput, Offer>;
    const first = await offer.run(nodeContext('r', 'offer', INPUT, { await_driver: { event: E.alternativePriceOffered, payload: { driverId: 'd1', price: 350 } } }));
    expect(first).to.include({ driverId: 'd1', price: 350 });
    const lower = await offer.run(nodeContext('r', 'offer', INPUT, {
      await_driver: { event: E.alternativePriceOffered, payload: { driverId: 'd1', price: 350 } },
      await_client: { event: E.alternativePriceOffered, payload: { driverId: 'd2', price: 320 } },
    }));
    expect(lower).to.include({ driverId: 'd2', price: 320 });
  });
});

describe('bargain example: the nodes against the drivers service', () => {
  let drivers: InProcessService<Drivers>;
  let clients: BargainClients;
  let def: ReturnType<typeof bargainFacade>;
  const step = <O>(name: string) => def.nodes.find((n) => n.name === name) as StepDefinition<BargainInput, O>;
  const ride = (id: string) => drivers.state.all().find((r) => r.request_id === id)!;

  before(async () => {
    drivers = await serveDrivers();
    clients = createBargainClients({ drivers: drivers.address });
    def = bargainFacade(clients);
  });
  after(async () => {
    clients.close();
    await drivers.stop();
  });

  it('dispatch notifies batch N (the visit) near `from`, once per batch, and accumulates who was notified', async () => {
    const dispatch = step<Dispatched>('dispatch');
    const first = await dispatch.run(nodeContext('b-1', 'dispatch', INPUT));
    expect(first).to.deep.include({ batch: 1, driverIds: ['old-town-driver-1', 'old-town-driver-2'], notified: ['old-town-driver-1', 'old-town-driver-2'] });
    expect(await dispatch.run(nodeContext('b-1', 'dispatch', INPUT))).to.deep.include({ driverIds: first.driverIds });
    const second = await dispatch.run({ ...nodeContext('b-1', 'dispatch', INPUT, { dispatch: first }), visit: 2 });
    expect(second).to.deep.include({ batch: 2, driverIds: driversNear('Old Town', 2, 2), notified: [...first.driverIds, ...driversNear('Old Town', 2, 2)] });
    expect(ride('b-1').calls).to.deep.equal(['DISPATCH', 'DISPATCH', 'DISPATCH']);
    expect(ride('b-1').notified.map((n) => n.status)).to.deep.equal(['NOTIFIED', 'NOTIFIED', 'NOTIFIED', 'NOTIFIED']);
  });

  it('assign gives the ride at the suggested price to the driver who accepted; the others are released; undone by Unassign', async () => {
    const d = await step<Dispatched>('dispatch').run(nodeContext('b-2', 'dispatch', INPUT));
    const assign = step<Match>('assign');
    const results = { dispatch: d, await_driver: { event: E.acceptOrder, payload: { driverId: d.driverIds[1] } } };
    expect(await assign.run(nodeContext('b-2', 'assign', INPUT, results))).to.deep.equal({ driverId: d.driverIds[1], price: 300 });
    expect(ride('b-2')).to.deep.include({ status: 'ASSIGNED', driver_id: d.driverIds[1], price: 300 });
    expect(ride('b-2').notified.map((n) => n.status)).to.deep.equal(['RELEASED', 'ASSIGNED']);
    await assign.compensate!(nodeContext('b-2', 'assign', INPUT, results, { driverId: d.driverIds[1], price: 300 }));
    expect(ride('b-2')).to.deep.include({ status: 'UNASSIGNED' });
    expect(ride('b-2').notified.map((n) => n.status)).to.deep.equal(['RELEASED', 'RELEASED']);
  });

  it('assign after the client accepted takes the offer\'s driver and price', async () => {
    const d = await step<Dispatched>('dispatch').run(nodeContext('b-3', 'dispatch', INPUT));
    const results = {
      dispatch: d,
      await_driver: { event: E.alternativePriceOffered, payload: { driverId: d.driverIds[0], price: 400 } },
      offer: { driverId: d.driverIds[0], price: 380, offeredAt: 0 },
      await_client: { event: E.clientAccept, payload: { driverId: d.driverIds[0] } },
    };
    expect(await step<Match>('assign').run(nodeContext('b-3', 'assign', INPUT, results))).to.deep.equal({ driverId: d.driverIds[0], price: 380 });
  });

  it('dispatch\'s compensation releases its batch, also without its output; a batch released first is never dispatched', async () => {
    const dispatch = step<Dispatched>('dispatch');
    const d = await dispatch.run(nodeContext('b-4', 'dispatch', INPUT));
    await dispatch.compensate!(nodeContext('b-4', 'dispatch', INPUT, {}, d));
    await dispatch.compensate!(nodeContext('b-4', 'dispatch', INPUT, {}, d));
    expect(ride('b-4').notified.map((n) => n.status)).to.deep.equal(['RELEASED', 'RELEASED']);
    await dispatch.compensate!({ ...nodeContext('b-4', 'dispatch', INPUT), visit: 2 });
    const late = await rejectionOf(dispatch.run({ ...nodeContext('b-4', 'dispatch', INPUT, { dispatch: d }), visit: 2 }));
    expect(late.message).to.match(/batch 2 of b-4 was released before it was dispatched/);
    expect(ride('b-4').calls).to.deep.equal(['DISPATCH', 'RELEASE', 'RELEASE', 'RELEASE', 'DISPATCH']);
  });

  it('the drivers service refuses to assign a driver never notified, or a second driver', async () => {
    const d = await step<Dispatched>('dispatch').run(nodeContext('b-5', 'dispatch', INPUT));
    expect(() => drivers.state.assign('b-5', 'stranger', 10)).to.throw(/never notified/);
    drivers.state.assign('b-5', d.driverIds[0], 10);
    expect(() => drivers.state.assign('b-5', d.driverIds[1], 10)).to.throw(/already assigned/);
  });
});
