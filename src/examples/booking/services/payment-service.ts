import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import type { Payment } from '../clients';

type Callback<T> = grpc.sendUnaryData<T>;

interface CreatePaymentRequest { request_id: string; idempotency_key: string; order_id: string; fault_inject: boolean; delay_ms: string }

class Declined extends Error {}

/** The demo payment service: payments in memory, creates idempotent per idempotency key. */
export class PaymentLedger {
  private nextId = 1;
  private readonly byId = new Map<string, Payment>();
  private readonly byRequestId = new Map<string, Payment>();
  /** One creation per key, even while a slow one is still waiting out its delay. */
  private readonly byKey = new Map<string, Promise<Payment>>();
  /** Requests refunded before their payment existed (e.g. a timed-out create still waiting): it must never be made. */
  private readonly tombstones = new Set<string>();

  create(req: CreatePaymentRequest, signal: AbortSignal): Promise<Payment> {
    const existing = this.byKey.get(req.idempotency_key);
    if (existing) return existing;
    const created = (async () => {
      const delay = Number(req.delay_ms);
      if (delay > 0) await sleep(delay, undefined, { signal });
      if (req.fault_inject) throw new Declined('payment declined: fault injected');
      if (this.tombstones.has(req.request_id)) throw new Declined(`request ${req.request_id} was refunded before its payment was made`);
      const payment: Payment = { id: String(this.nextId++), request_id: req.request_id, order_id: req.order_id, status: 'PAID' };
      this.byId.set(payment.id, payment);
      this.byRequestId.set(req.request_id, payment);
      return payment;
    })();
    this.byKey.set(req.idempotency_key, created);
    // A failed or cut attempt may be tried again with the same key.
    created.catch(() => this.byKey.delete(req.idempotency_key));
    return created;
  }

  refund(by: { id?: string; request_id?: string }): Payment | undefined {
    const payment = this.find(by);
    if (payment) payment.status = 'REFUNDED';
    else if (by.request_id) this.tombstones.add(by.request_id);
    return payment;
  }

  find(by: { id?: string; request_id?: string }): Payment | undefined {
    return by.id !== undefined && by.id !== '0' ? this.byId.get(by.id) : this.byRequestId.get(by.request_id ?? '');
  }

  all(): Payment[] {
    return [...this.byId.values()];
  }
}

export function paymentServiceImpl(ledger: PaymentLedger, log: Logger): grpc.UntypedServiceImplementation {
  return {
    CreatePayment(call: grpc.ServerUnaryCall<CreatePaymentRequest, Payment>, cb: Callback<Payment>) {
      const req = call.request;
      if (!req.idempotency_key) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'idempotency_key: required' });
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      ledger.create(req, controller.signal).then(
        (payment) => {
          log.info('payment made', { requestId: req.request_id, paymentId: payment.id });
          cb(null, payment);
        },
        (err: Error) => {
          log.info('payment refused', { requestId: req.request_id, error: err.message });
          cb({ code: err instanceof Declined ? grpc.status.FAILED_PRECONDITION : grpc.status.CANCELLED, details: err.message });
        },
      );
    },
    RefundPayment(call: grpc.ServerUnaryCall<{ id: string; request_id: string }, Payment>, cb: Callback<Payment>) {
      const payment = ledger.refund(call.request);
      if (!payment) return cb({ code: grpc.status.NOT_FOUND, details: `payment ${call.request.id !== '0' ? call.request.id : `for request ${call.request.request_id}`} not found` });
      log.info('payment refunded', { requestId: payment.request_id, paymentId: payment.id });
      cb(null, payment);
    },
    ListPayments(_call: grpc.ServerUnaryCall<object, { payments: Payment[] }>, cb: Callback<{ payments: Payment[] }>) {
      cb(null, { payments: ledger.all() });
    },
    GetPayment(call: grpc.ServerUnaryCall<{ by?: 'id' | 'request_id'; id?: string; request_id?: string }, Payment>, cb: Callback<Payment>) {
      const { by, id, request_id } = call.request;
      const payment = ledger.find(by === 'id' ? { id } : { request_id });
      if (!payment) return cb({ code: grpc.status.NOT_FOUND, details: `payment ${by === 'id' ? id : `for request ${request_id}`} not found` });
      cb(null, payment);
    },
  };
}
