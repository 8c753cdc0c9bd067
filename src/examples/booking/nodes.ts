import type { StepDefinition } from '../../engine/facade';
import { callUpstream, ignoreNotFound } from '../../grpc/call';
import type { BookingClients, Order, Payment } from './clients';
import type { BookingInput } from './input';

export interface OrderCreated { orderId: string }
export interface PaymentMade { paymentId: string }

/** Creates the order; undone by cancelling it. */
export function createOrderNode(clients: BookingClients, topic?: string): StepDefinition<BookingInput, OrderCreated> {
  return {
    name: 'createOrder',
    topic,
    async run(ctx) {
      const order = await callUpstream<object, Order>(clients.order, 'CreateOrder', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, product_id: ctx.input.productId, count: ctx.input.count,
      }, { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal, deadline: ctx.deadline });
      return { orderId: order.id };
    },
    // By request id: works whether or not the order's id was recorded; NOT_FOUND means it never acted.
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Order>(clients.order, 'CancelOrder', { request_id: ctx.requestId }, {
        requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal, deadline: ctx.deadline,
      }));
    },
  };
}

/** Takes the payment for the order created before; undone by refunding it. */
export function createPaymentNode(clients: BookingClients, topic?: string): StepDefinition<BookingInput, PaymentMade> {
  return {
    name: 'createPayment',
    topic,
    async run(ctx) {
      const { orderId } = ctx.results.createOrder as OrderCreated;
      const payment = await callUpstream<object, Payment>(clients.payment, 'CreatePayment', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, order_id: orderId,
        fault_inject: ctx.input.faultInject, delay_ms: ctx.input.delayMs,
      }, { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal, deadline: ctx.deadline });
      return { paymentId: payment.id };
    },
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Payment>(clients.payment, 'RefundPayment', { request_id: ctx.requestId }, {
        requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal, deadline: ctx.deadline,
      }));
    },
  };
}
