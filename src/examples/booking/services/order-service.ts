import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import type { Order } from '../clients';

type Callback<T> = grpc.sendUnaryData<T>;

/** The demo order service: orders in memory, creates idempotent per idempotency key. */
export class OrderBook {
  private nextId = 1;
  private readonly byId = new Map<string, Order>();
  private readonly byKey = new Map<string, Order>();
  private readonly byRequestId = new Map<string, Order>();

  create(req: { request_id: string; idempotency_key: string; product_id: string; count: string }): Order {
    const existing = this.byKey.get(req.idempotency_key);
    if (existing) return existing;
    const order: Order = { id: String(this.nextId++), request_id: req.request_id, product_id: req.product_id, count: req.count, status: 'CREATED' };
    this.byId.set(order.id, order);
    this.byKey.set(req.idempotency_key, order);
    this.byRequestId.set(req.request_id, order);
    return order;
  }

  cancel(id: string): Order | undefined {
    const order = this.byId.get(id);
    if (order) order.status = 'CANCELLED';
    return order;
  }

  find(by: { id?: string; request_id?: string }): Order | undefined {
    return by.id !== undefined ? this.byId.get(by.id) : this.byRequestId.get(by.request_id ?? '');
  }
}

export function orderServiceImpl(book: OrderBook, log: Logger): grpc.UntypedServiceImplementation {
  return {
    CreateOrder(call: grpc.ServerUnaryCall<Parameters<OrderBook['create']>[0], Order>, cb: Callback<Order>) {
      const req = call.request;
      if (!req.idempotency_key) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'idempotency_key: required' });
      if (!(Number(req.product_id) > 0)) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'product_id: must be > 0' });
      const order = book.create(req);
      log.info('order created', { requestId: req.request_id, orderId: order.id });
      cb(null, order);
    },
    CancelOrder(call: grpc.ServerUnaryCall<{ id: string }, Order>, cb: Callback<Order>) {
      const order = book.cancel(call.request.id);
      if (!order) return cb({ code: grpc.status.NOT_FOUND, details: `order ${call.request.id} not found` });
      log.info('order cancelled', { requestId: order.request_id, orderId: order.id });
      cb(null, order);
    },
    GetOrder(call: grpc.ServerUnaryCall<{ by?: 'id' | 'request_id'; id?: string; request_id?: string }, Order>, cb: Callback<Order>) {
      const { by, id, request_id } = call.request;
      const order = book.find(by === 'id' ? { id } : { request_id });
      if (!order) return cb({ code: grpc.status.NOT_FOUND, details: `order ${by === 'id' ? id : `for request ${request_id}`} not found` });
      cb(null, order);
    },
  };
}
