import * as grpc from '@grpc/grpc-js';
import { clientOf, loadProtos } from '../../grpc/protos';

export interface Order { id: string; request_id: string; product_id: string; count: string; status: 'CREATED' | 'CANCELLED' }
export interface Payment { id: string; request_id: string; order_id: string; status: 'PAID' | 'REFUNDED' }

export interface BookingClients {
  order: grpc.Client;
  payment: grpc.Client;
  close(): void;
}

/**
 * grpc-js backs off reconnecting up to 120 s by default: an upstream that comes back would stay
 * unreachable to retries and compensations long after. Saga retries are seconds apart, so reconnect
 * attempts are too. The engine retries steps itself (with idempotency keys), so grpc-js' own retry
 * layer, which buffers every call, is off; so is channelz, whose statistics nobody reads.
 */
const UPSTREAM_CHANNEL: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1_000, 'grpc.enable_retries': 0, 'grpc.enable_channelz': 0,
};

/** gRPC clients of the demo order and payment services. */
export function createBookingClients(addresses: { order: string; payment: string }): BookingClients {
  const protos = loadProtos(['order.proto', 'payment.proto']);
  const credentials = grpc.credentials.createInsecure();
  const order = new (clientOf(protos, 'order.v1.OrderService'))(addresses.order, credentials, UPSTREAM_CHANNEL);
  const payment = new (clientOf(protos, 'payment.v1.PaymentService'))(addresses.payment, credentials, UPSTREAM_CHANNEL);
  return { order, payment, close: () => { order.close(); payment.close(); } };
}
