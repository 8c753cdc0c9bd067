import type { FacadeDefinition, FacadeMode } from '../../engine/facade';
import { sequence } from '../../engine/graph';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS, type TopicSpec } from '../../../topics/topics';
import type { BookingClients } from './clients';
import { parseBookingInput, type BookingInput } from './input';
import { createOrderNode, createPaymentNode, type OrderCreated, type PaymentMade } from './nodes';

export const SYNC_BOOKING = 'SyncBooking';
export const ASYNC_BOOKING = 'AsyncBooking';
export const THROTTLED_BOOKING = 'ThrottledBooking';

export interface BookingResult { orderId: string; paymentId: string }

function result(results: Readonly<Record<string, unknown>>): BookingResult {
  return { orderId: (results.createOrder as OrderCreated).orderId, paymentId: (results.createPayment as PaymentMade).paymentId };
}

/** createOrder then createPayment; a failed payment cancels the order. */
export function registerBookingFacades(registry: FacadeRegistry, clients: BookingClients): void {
  // One booking flow, three ways to run it; only the mode and the topics differ.
  const booking = (name: string, mode: FacadeMode, topics: { order?: TopicSpec; payment?: TopicSpec; rollback: TopicSpec }): FacadeDefinition<BookingInput, BookingResult> => ({
    name,
    version: 1,
    mode,
    nodes: sequence(createOrderNode(clients, topics.order?.name), createPaymentNode(clients, topics.payment?.name)),
    rollbackTopic: topics.rollback.name,
    parseInput: parseBookingInput,
    result,
  });
  registry
    .register(booking(SYNC_BOOKING, 'sync', { rollback: TOPICS.bookingSyncRollback }))
    .register(booking(ASYNC_BOOKING, 'async', { order: TOPICS.bookingAsyncCreateOrder, payment: TOPICS.bookingAsyncCreatePayment, rollback: TOPICS.bookingAsyncRollback }))
    .register(booking(THROTTLED_BOOKING, 'throttled', { order: TOPICS.bookingThrottledCreateOrder, payment: TOPICS.bookingThrottledCreatePayment, rollback: TOPICS.bookingThrottledRollback }));
}
