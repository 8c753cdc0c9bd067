import type { FacadeDefinition } from '../../engine/facade';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS } from '../../../topics/topics';
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
  const sync: FacadeDefinition<BookingInput, BookingResult> = {
    name: SYNC_BOOKING,
    version: 1,
    mode: 'sync',
    steps: [createOrderNode(clients), createPaymentNode(clients)],
    rollbackTopic: TOPICS.bookingSyncRollback.name,
    parseInput: parseBookingInput,
    result,
  };
  const async: FacadeDefinition<BookingInput, BookingResult> = {
    name: ASYNC_BOOKING,
    version: 1,
    mode: 'async',
    steps: [
      createOrderNode(clients, TOPICS.bookingAsyncCreateOrder.name),
      createPaymentNode(clients, TOPICS.bookingAsyncCreatePayment.name),
    ],
    rollbackTopic: TOPICS.bookingAsyncRollback.name,
    parseInput: parseBookingInput,
    result,
  };
  const throttled: FacadeDefinition<BookingInput, BookingResult> = {
    name: THROTTLED_BOOKING,
    version: 1,
    mode: 'throttled',
    steps: [
      createOrderNode(clients, TOPICS.bookingThrottledCreateOrder.name),
      createPaymentNode(clients, TOPICS.bookingThrottledCreatePayment.name),
    ],
    rollbackTopic: TOPICS.bookingThrottledRollback.name,
    parseInput: parseBookingInput,
    result,
  };
  registry.register(sync).register(async).register(throttled);
}
