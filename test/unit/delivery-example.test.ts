import { expect } from 'chai';
import { loadConfig } from '../../src/config/load';
import { ValidationError } from '../../src/engine/errors';
import type { StepDefinition, WaitDefinition } from '../../src/engine/facade';
import { FacadeRegistry } from '../../src/engine/registry';
import { createDeliveryClients, type DeliveryClients } from '../../src/examples/delivery/clients';
import { deliveryFacade, ORDER_DELIVERY, registerDeliveryFacades } from '../../src/examples/delivery/facade';
import { DEFAULT_PAYMENT_TIMEOUT_MS, MAX_ITEMS, parseDeliveryInput, type DeliveryInput } from '../../src/examples/delivery/input';
import { DELIVERY_EVENTS as E } from '../../src/examples/delivery/nodes';
import { Warehouse } from '../../src/examples/delivery/services/warehouse-service';
import { nodeContext, serveWarehouse, type InProcessService } from '../helpers/demo-services';
import { rejectionOf } from '../helpers/wait';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

describe('delivery example: input', () => {
  it('takes items and paymentTimeoutMs; paymentTimeoutMs defaults to 15 minutes', () => {
    expect(parseDeliveryInput({ items: ['sku-1'], paymentTimeoutMs: 1_500 })).to.deep.equal({ items: ['sku-1'], paymentTimeoutMs: 1_500 });
    expect(parseDeliveryInput({ items: ['a', 'b'] })).to.deep.equal({ items: ['a', 'b'], paymentTimeoutMs: DEFAULT_PAYMENT_TIMEOUT_MS });
  });

  const bad: [string, unknown, string][] = [
    ['no object', 'order', 'input'],
    ['an array', [], 'input'],
    ['no items', { paymentTimeoutMs: 1_000 }, 'items'],
    ['empty items', { items: [], paymentTimeoutMs: 1_000 }, 'items'],
    ['items not an array', { items: 'sku-1', paymentTimeoutMs: 1_000 }, 'items'],
    ['too many items', { items: Array.from({ length: MAX_ITEMS + 1 }, (_, i) => `sku-${i}`) }, 'items'],
    ['an empty item', { items: ['sku-1', ''] }, 'items[1]'],
    ['a number item', { items: [7] }, 'items[0]'],
    ['a zero paymentTimeoutMs', { items: ['a'], paymentTimeoutMs: 0 }, 'paymentTimeoutMs'],
    ['a fractional paymentTimeoutMs', { items: ['a'], paymentTimeoutMs: 1.5 }, 'paymentTimeoutMs'],
    ['a text paymentTimeoutMs', { items: ['a'], paymentTimeoutMs: '1000' }, 'paymentTimeoutMs'],
    ['a paymentTimeoutMs over a day', { items: ['a'], paymentTimeoutMs: 86_400_001 }, 'paymentTimeoutMs'],
  ];
  for (const [what, raw, field] of bad) {
    it(`rejects ${what}, naming ${field}`, () => {
      expect(() => parseDeliveryInput(raw)).to.throw(ValidationError).with.property('field', field);
    });
  }
});

describe('delivery example: the facade, its versions and the warehouse', () => {
  let warehouse: InProcessService<Warehouse>;
  let clients: DeliveryClients;
  const input: DeliveryInput = { items: ['sku-1', 'sku-2'], paymentTimeoutMs: 1_000 };

  before(async () => {
    warehouse = await serveWarehouse();
    clients = createDeliveryClients({ warehouse: warehouse.address });
  });
  after(async () => {
    clients.close();
    await warehouse.stop();
  });

  it('version 1: checkout → payment race → order_received → delivering → delivered; version 2 adds packed; both async and strict', () => {
    const graph = (v: 1 | 2) => deliveryFacade(clients, v).nodes.map((n) => [n.name, n.kind ?? 'step', n.after ?? [], n.kind === 'wait' ? n.events : []]);
    expect(graph(1)).to.deep.equal([
      ['checkout', 'step', [], []],
      ['payment', 'wait', ['checkout'], [E.paymentMade, E.paymentCancelled]],
      ['order_received', 'wait', [], [E.orderReceived]],
      ['delivering', 'wait', ['order_received'], [E.delivering]],
      ['delivered', 'wait', ['delivering'], [E.delivered]],
    ]);
    expect(graph(2)).to.deep.equal([
      ['checkout', 'step', [], []],
      ['payment', 'wait', ['checkout'], [E.paymentMade, E.paymentCancelled]],
      ['order_received', 'wait', [], [E.orderReceived]],
      ['packed', 'wait', ['order_received'], [E.packed]],
      ['delivering', 'wait', ['packed'], [E.delivering]],
      ['delivered', 'wait', ['delivering'], [E.delivered]],
    ]);
    for (const v of [1, 2] as const) expect(deliveryFacade(clients, v)).to.include({ name: ORDER_DELIVERY, version: v, mode: 'async', strictEvents: true });
  });

  it('the payment race: payment_made goes on to order_received; payment_cancelled and the timeout fail (and so compensate)', () => {
    const payment = deliveryFacade(clients, 2).nodes.find((n) => n.name === 'payment') as WaitDefinition<DeliveryInput>;
    const ctx = { requestId: 'o', input, results: {}, visit: 1 };
    expect(payment.timeoutMs).to.be.a('function');
    expect((payment.timeoutMs as (i: DeliveryInput) => number)(input)).to.equal(1_000);
    expect(payment.next!({ event: E.paymentMade, payload: {} }, ctx)).to.equal('order_received');
    expect(() => payment.next!({ event: E.paymentCancelled, payload: {} }, ctx)).to.throw(/payment cancelled/).with.property('code', 'CANCELLED');
    expect(() => payment.next!({ event: 'timeout' }, ctx)).to.throw(/payment expired/).with.property('code', 'DEADLINE_EXCEEDED');
  });

  it('checkout reserves the items once per order; its compensation releases them, and tolerates nothing reserved', async () => {
    const checkout = deliveryFacade(clients, 1).nodes[0] as StepDefinition<DeliveryInput, { reservationId: string }>;
    const first = await checkout.run(nodeContext('o-1', 'checkout', input));
    expect(await checkout.run(nodeContext('o-1', 'checkout', input))).to.deep.equal(first);
    await checkout.compensate!(nodeContext('o-1', 'checkout', input, {}, first));
    await checkout.compensate!(nodeContext('o-1', 'checkout', input, {}, first));
    expect(warehouse.state.all().find((r) => r.request_id === 'o-1')).to.deep.include({ status: 'RELEASED', items: ['sku-1', 'sku-2'], calls: ['RESERVE', 'RESERVE', 'RELEASE', 'RELEASE'] });
    // Released before it was reserved (the outcome of checkout was never recorded): a late Reserve is refused.
    await checkout.compensate!(nodeContext('o-2', 'checkout', input));
    expect((await rejectionOf(checkout.run(nodeContext('o-2', 'checkout', input)))).message).to.match(/released before it was reserved/);
  });

  it('registers the versions it is given (examples.delivery.versions), and refuses an unknown one', () => {
    const only1 = new FacadeRegistry();
    registerDeliveryFacades(only1, clients, [1]);
    expect(only1.versions(ORDER_DELIVERY)).to.deep.equal([1]);
    const both = new FacadeRegistry();
    registerDeliveryFacades(both, clients);
    expect(both.versions(ORDER_DELIVERY)).to.deep.equal([1, 2]);
    expect(() => registerDeliveryFacades(new FacadeRegistry(), clients, [3])).to.throw(/examples.delivery.versions: OrderDelivery has versions 1, 2, not 3/);
  });

  it('examples.delivery.versions comes from app.yaml or OCH_DELIVERY_VERSIONS (default both)', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'och-delivery-')), 'app.yaml');
    writeFileSync(file, 'examples:\n  delivery:\n    versions: [1]\n');
    expect(loadConfig(file, {}).examples.delivery.versions).to.deep.equal([1]);
    expect(loadConfig(file, { OCH_DELIVERY_VERSIONS: '1, 2' }).examples.delivery.versions).to.deep.equal([1, 2]);
    writeFileSync(file, '');
    expect(loadConfig(file, {}).examples.delivery.versions).to.deep.equal([1, 2]);
  });
});
