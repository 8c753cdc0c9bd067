import { StepError } from '../../engine/errors';
import type { NodeDefinition, StepDefinition, WaitDefinition } from '../../engine/facade';
import { callOptionsOf, callUpstream, ignoreNotFound } from '../../grpc/call';
import { TOPICS } from '../../../topics/topics';
import type { DeliveryClients, Reservation } from './clients';
import type { DeliveryInput } from './input';

/** The events of the contract (SendEvent's `event`, or `event` on the events topic). */
export const DELIVERY_EVENTS = {
  paymentMade: 'payment_made',
  paymentCancelled: 'payment_cancelled',
  orderReceived: 'order_received',
  /** Version 2 only. */
  packed: 'packed',
  delivering: 'delivering',
  delivered: 'delivered',
} as const;

export interface CheckedOut { reservationId: string }

/** Reserves the order's items in the warehouse; undone by releasing them. */
export function checkoutNode(clients: DeliveryClients): StepDefinition<DeliveryInput, CheckedOut> {
  return {
    name: 'checkout',
    topic: TOPICS.deliveryCheckout.name,
    async run(ctx) {
      const r = await callUpstream<object, Reservation>(clients.warehouse, 'Reserve', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, items: ctx.input.items,
      }, callOptionsOf(ctx));
      return { reservationId: r.id };
    },
    // NOT_FOUND: nothing was reserved (and the warehouse now refuses a late Reserve for this order).
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Reservation>(clients.warehouse, 'Release', { request_id: ctx.requestId }, callOptionsOf(ctx)));
    },
  };
}

/**
 * The race after checkout: payment_made goes on; payment_cancelled, or no payment within
 * input.paymentTimeoutMs, fails the saga, which releases the items.
 */
export function paymentNode(): WaitDefinition<DeliveryInput> {
  return {
    kind: 'wait',
    name: 'payment',
    after: ['checkout'],
    events: [DELIVERY_EVENTS.paymentMade, DELIVERY_EVENTS.paymentCancelled],
    timeoutMs: (input) => input.paymentTimeoutMs,
    branches: ['order_received'],
    next(output) {
      const event = (output as { event?: string } | null)?.event;
      if (event === DELIVERY_EVENTS.paymentMade) return 'order_received';
      if (event === DELIVERY_EVENTS.paymentCancelled) throw new StepError('CANCELLED', 'payment cancelled', false);
      throw new StepError('DEADLINE_EXCEEDED', 'payment expired: no payment within paymentTimeoutMs', false);
    },
  };
}

/** A wait for one event from outside (ops, the courier, the user); no timeout: the saga's expiry bounds it. */
function waitFor(event: string, after?: string): WaitDefinition<DeliveryInput> {
  return { kind: 'wait', name: event, ...(after ? { after: [after] } : {}), events: [event] };
}

/** The graph of a version: v1 checkout → payment → order_received → delivering → delivered; v2 adds packed before delivering. */
export function deliveryNodes(clients: DeliveryClients, version: 1 | 2): NodeDefinition<DeliveryInput>[] {
  const e = DELIVERY_EVENTS;
  return [
    checkoutNode(clients),
    paymentNode(),
    waitFor(e.orderReceived),
    ...(version === 2 ? [waitFor(e.packed, e.orderReceived)] : []),
    waitFor(e.delivering, version === 2 ? e.packed : e.orderReceived),
    waitFor(e.delivered, e.delivering),
  ];
}
