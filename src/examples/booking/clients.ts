import * as grpc from '@grpc/grpc-js';
import { UPSTREAM_CHANNEL } from '../../grpc/call';
import { clientOf, loadProtos } from '../../grpc/protos';

export interface Order { id: string; request_id: string; product_id: string; count: string; status: 'CREATED' | 'CANCELLED' }
export interface Payment { id: string; request_id: string; order_id: string; status: 'PAID' | 'REFUNDED' }

export interface BookingClients {
  order: grpc.Client;
  payment: grpc.Client;
  close(): void;
}

/** gRPC clients of the demo order and payment services. */
export function createBookingClients(addresses: { order: string; payment: string }): BookingClients {
  const protos = loadProtos(['order.proto', 'payment.proto']);
  const credentials = grpc.credentials.createInsecure();
  const order = new (clientOf(protos, 'order.v1.OrderService'))(addresses.order, credentials, UPSTREAM_CHANNEL);
  const payment = new (clientOf(protos, 'payment.v1.PaymentService'))(addresses.payment, credentials, UPSTREAM_CHANNEL);
  return { order, payment, close: () => { order.close(); payment.close(); } };
}
