import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import { Refusal, respond } from '../../demo/refusal';

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback<T> = grpc.sendUnaryData<T>;

export type ReservationStatus = 'RESERVED' | 'RELEASED';
export type WarehouseCall = 'RESERVE' | 'RELEASE';

/** A warehouse.v1.Reservation. */
export interface Reservation { id: string; request_id: string; items: string[]; status: ReservationStatus; calls: WarehouseCall[] }

/**
 * The demo store's warehouse: one reservation per order (request id = order id), in memory.
 * Reserve is idempotent per order; Release too, and a Release before any Reserve forbids it (the
 * compensation of a checkout whose outcome was never recorded must win over a late Reserve). Every
 * Reserve and Release call is recorded on the order's reservation (`calls`), refused ones included.
 */
export class Warehouse {
  private nextId = 1;
  private readonly reservations = new Map<string, Reservation>();
  /** Orders released before anything was reserved: their Reserve is refused. */
  private readonly tombstones = new Set<string>();
  /** Calls made for orders that have no reservation (yet). */
  private readonly orphanCalls = new Map<string, WarehouseCall[]>();

  reserve(requestId: string, items: string[]): Reservation {
    if (!requestId) throw new Refusal('INVALID_ARGUMENT', 'request_id: required (the order id)');
    const existing = this.reservations.get(requestId);
    if (existing) {
      existing.calls.push('RESERVE');
      return existing;
    }
    this.callOf(requestId, 'RESERVE');
    if (this.tombstones.has(requestId)) throw new Refusal('FAILED_PRECONDITION', `order ${requestId} was released before it was reserved`);
    if (items.length === 0) throw new Refusal('INVALID_ARGUMENT', 'items: at least one');
    const reservation: Reservation = { id: `reservation-${this.nextId++}`, request_id: requestId, items: [...items], status: 'RESERVED', calls: this.orphanCalls.get(requestId) ?? [] };
    this.orphanCalls.delete(requestId);
    this.reservations.set(requestId, reservation);
    return reservation;
  }

  release(requestId: string): Reservation {
    const existing = this.reservations.get(requestId);
    if (!existing) {
      this.callOf(requestId, 'RELEASE');
      this.tombstones.add(requestId);
      throw new Refusal('NOT_FOUND', `no reservation for order ${requestId || '(none)'}`);
    }
    existing.calls.push('RELEASE');
    existing.status = 'RELEASED';
    return existing;
  }

  all(): Reservation[] {
    return [...this.reservations.values()].map((r) => ({ ...r, items: [...r.items], calls: [...r.calls] }));
  }

  private callOf(requestId: string, call: WarehouseCall): void {
    const calls = this.orphanCalls.get(requestId) ?? [];
    calls.push(call);
    this.orphanCalls.set(requestId, calls);
  }
}

export function warehouseServiceImpl(warehouse: Warehouse, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Reserve(call: Call<{ request_id: string; idempotency_key: string; items: string[] }>, cb: Callback<Reservation>) {
      const req = call.request;
      respond(cb, () => {
        const r = warehouse.reserve(req.request_id, req.items ?? []);
        log.info('items reserved', { requestId: r.request_id, reservationId: r.id, items: r.items.length });
        return r;
      });
    },
    Release(call: Call<{ request_id: string }>, cb: Callback<Reservation>) {
      respond(cb, () => {
        const r = warehouse.release(call.request.request_id);
        log.info('items released', { requestId: r.request_id, reservationId: r.id });
        return r;
      });
    },
    ListReservations(_call: Call<object>, cb: Callback<{ reservations: Reservation[] }>) {
      cb(null, { reservations: warehouse.all() });
    },
  };
}
