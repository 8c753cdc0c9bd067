import type { StepDefinition } from '../../engine/facade';
import { callUpstream } from '../../grpc/call';
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
      }, { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal });
      return { orderId: order.id };
    },
    async compensate(ctx) {
      await callUpstream<object, Order>(clients.order, 'CancelOrder', { id: ctx.output.orderId }, {
        requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal,
      });
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
      }, { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal });
      return { paymentId: payment.id };
    },
    async compensate(ctx) {
      await callUpstream<object, Payment>(clients.payment, 'RefundPayment', { id: ctx.output.paymentId }, {
        requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey, signal: ctx.signal,
      });
    },
  };
}
