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
  /** Requests cancelled before their order existed: a late create must not bring the order back. */
  private readonly tombstones = new Set<string>();

  /** Undefined when the request was cancelled before its order existed. */
  create(req: { request_id: string; idempotency_key: string; product_id: string; count: string }): Order | undefined {
    const existing = this.byKey.get(req.idempotency_key);
    if (existing) return existing;
    if (this.tombstones.has(req.request_id)) return undefined;
    const order: Order = { id: String(this.nextId++), request_id: req.request_id, product_id: req.product_id, count: req.count, status: 'CREATED' };
    this.byId.set(order.id, order);
    this.byKey.set(req.idempotency_key, order);
    this.byRequestId.set(req.request_id, order);
    return order;
  }

  cancel(by: { id?: string; request_id?: string }): Order | undefined {
    const order = this.find(by);
    if (order) order.status = 'CANCELLED';
    else if (by.request_id) this.tombstones.add(by.request_id);
    return order;
  }

  find(by: { id?: string; request_id?: string }): Order | undefined {
    return by.id !== undefined && by.id !== '0' ? this.byId.get(by.id) : this.byRequestId.get(by.request_id ?? '');
  }

  all(): Order[] {
    return [...this.byId.values()];
  }

  /** What a restart must keep (see main.ts' state file): orders with their idempotency keys, and tombstones. */
  toJSON(): { orders: [key: string, order: Order][]; tombstones: string[] } {
    return { orders: [...this.byKey.entries()], tombstones: [...this.tombstones] };
  }

  static from(state: ReturnType<OrderBook['toJSON']>): OrderBook {
    const book = new OrderBook();
    for (const [key, order] of state.orders) {
      book.byKey.set(key, order);
      book.byId.set(order.id, order);
      book.byRequestId.set(order.request_id, order);
      book.nextId = Math.max(book.nextId, Number(order.id) + 1);
    }
    for (const t of state.tombstones) book.tombstones.add(t);
    return book;
  }
}

export function orderServiceImpl(book: OrderBook, log: Logger): grpc.UntypedServiceImplementation {
  return {
    CreateOrder(call: grpc.ServerUnaryCall<Parameters<OrderBook['create']>[0], Order>, cb: Callback<Order>) {
      const req = call.request;
      if (!req.idempotency_key) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'idempotency_key: required' });
      if (!(Number(req.product_id) > 0)) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'product_id: must be > 0' });
      const order = book.create(req);
      if (!order) return cb({ code: grpc.status.FAILED_PRECONDITION, details: `request ${req.request_id} was cancelled before its order was created` });
      log.info('order created', { requestId: req.request_id, orderId: order.id });
      cb(null, order);
    },
    CancelOrder(call: grpc.ServerUnaryCall<{ id: string; request_id: string }, Order>, cb: Callback<Order>) {
      const order = book.cancel(call.request);
      if (!order) return cb({ code: grpc.status.NOT_FOUND, details: `order ${call.request.id !== '0' ? call.request.id : `for request ${call.request.request_id}`} not found` });
      log.info('order cancelled', { requestId: order.request_id, orderId: order.id });
      cb(null, order);
    },
    ListOrders(_call: grpc.ServerUnaryCall<object, { orders: Order[] }>, cb: Callback<{ orders: Order[] }>) {
      cb(null, { orders: book.all() });
    },
    GetOrder(call: grpc.ServerUnaryCall<{ by?: 'id' | 'request_id'; id?: string; request_id?: string }, Order>, cb: Callback<Order>) {
      const { by, id, request_id } = call.request;
      const order = book.find(by === 'id' ? { id } : { request_id });
      if (!order) return cb({ code: grpc.status.NOT_FOUND, details: `order ${by === 'id' ? id : `for request ${request_id}`} not found` });
      cb(null, order);
    },
  };
}
