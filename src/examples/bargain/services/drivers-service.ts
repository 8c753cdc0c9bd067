import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import { Refusal, respond } from '../../demo/refusal';

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback<T> = grpc.sendUnaryData<T>;

export type NotificationStatus = 'NOTIFIED' | 'RELEASED' | 'ASSIGNED';
export type RideStatus = 'DISPATCHING' | 'ASSIGNED' | 'UNASSIGNED';
export type DriversCall = 'DISPATCH' | 'RELEASE' | 'ASSIGN' | 'UNASSIGN';

/** A drivers.v1.Notification. */
export interface Notification { batch: number; driver_id: string; status: NotificationStatus }
/** A drivers.v1.Ride. */
export interface Ride { request_id: string; client_id: string; notified: Notification[]; driver_id: string; price: number; status: RideStatus; calls: DriversCall[] }
/** A drivers.v1.Batch. */
export interface Batch { request_id: string; batch: number; driver_ids: string[] }

export interface DispatchOrder { requestId: string; batch: number; batchSize: number; clientId: string; from: string }

/** The drivers of batch `batch` near `from`: the same ones for the same batch, others for the next. */
export function driversNear(from: string, batch: number, batchSize: number): string[] {
  const area = from.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'area';
  return Array.from({ length: batchSize }, (_, i) => `${area}-driver-${(batch - 1) * batchSize + i + 1}`);
}

/**
 * The demo ride-hailing backend's drivers: one ride per order (request id), in memory. Dispatch is
 * idempotent per batch; Release too, and a Release of a batch before its Dispatch forbids it (the
 * compensation of a dispatch whose outcome was never recorded must win over a late Dispatch).
 * Every call is recorded on the ride (`calls`), refused ones included.
 */
export class Drivers {
  private readonly rides = new Map<string, Ride>();
  /** (request id, batch) released before it was dispatched: its Dispatch is refused. */
  private readonly tombstones = new Set<string>();

  dispatch(order: DispatchOrder): Batch {
    if (!order.requestId) throw new Refusal('INVALID_ARGUMENT', 'request_id: required');
    if (!(order.batch >= 1) || !(order.batchSize >= 1)) throw new Refusal('INVALID_ARGUMENT', 'batch and batch_size: at least 1');
    const ride = this.ride(order.requestId, 'DISPATCH', order.clientId);
    const existing = ride.notified.filter((n) => n.batch === order.batch);
    if (existing.length > 0) return this.batchOf(ride, order.batch);
    if (this.tombstones.has(`${order.requestId}\u0000${order.batch}`)) throw new Refusal('FAILED_PRECONDITION', `batch ${order.batch} of ${order.requestId} was released before it was dispatched`);
    if (ride.status !== 'DISPATCHING') throw new Refusal('FAILED_PRECONDITION', `ride ${order.requestId} is ${ride.status}: no more dispatches`);
    for (const driver of driversNear(order.from, order.batch, order.batchSize)) ride.notified.push({ batch: order.batch, driver_id: driver, status: 'NOTIFIED' });
    return this.batchOf(ride, order.batch);
  }

  release(requestId: string, batch: number): Batch {
    const ride = this.ride(requestId, 'RELEASE');
    const notified = ride.notified.filter((n) => n.batch === batch);
    if (notified.length === 0) {
      this.tombstones.add(`${requestId}\u0000${batch}`);
      throw new Refusal('NOT_FOUND', `batch ${batch} of ${requestId || '(none)'} was never dispatched`);
    }
    for (const n of notified) if (n.status === 'NOTIFIED') n.status = 'RELEASED';
    return this.batchOf(ride, batch);
  }

  assign(requestId: string, driverId: string, price: number): Ride {
    const ride = this.ride(requestId, 'ASSIGN');
    if (ride.status === 'ASSIGNED') {
      if (ride.driver_id === driverId) return copy(ride);
      throw new Refusal('FAILED_PRECONDITION', `ride ${requestId} is already assigned to ${ride.driver_id}`);
    }
    if (!ride.notified.some((n) => n.driver_id === driverId)) throw new Refusal('FAILED_PRECONDITION', `driver ${driverId || '(none)'} was never notified of ${requestId}`);
    if (!(price > 0)) throw new Refusal('INVALID_ARGUMENT', 'price: must be positive');
    for (const n of ride.notified) n.status = n.driver_id === driverId ? 'ASSIGNED' : n.status === 'NOTIFIED' ? 'RELEASED' : n.status;
    Object.assign(ride, { driver_id: driverId, price, status: 'ASSIGNED' });
    return copy(ride);
  }

  unassign(requestId: string): Ride {
    const ride = this.ride(requestId, 'UNASSIGN');
    if (ride.status !== 'ASSIGNED' && ride.status !== 'UNASSIGNED') throw new Refusal('NOT_FOUND', `ride ${requestId || '(none)'} was never assigned`);
    for (const n of ride.notified) if (n.status === 'ASSIGNED') n.status = 'RELEASED';
    ride.status = 'UNASSIGNED';
    return copy(ride);
  }

  all(): Ride[] {
    return [...this.rides.values()].map(copy);
  }

  /** The order's ride (created on first sight), with this call recorded on it. */
  private ride(requestId: string, call: DriversCall, clientId = ''): Ride {
    let ride = this.rides.get(requestId);
    if (!ride) {
      ride = { request_id: requestId, client_id: clientId, notified: [], driver_id: '', price: 0, status: 'DISPATCHING', calls: [] };
      this.rides.set(requestId, ride);
    }
    if (!ride.client_id && clientId) ride.client_id = clientId;
    ride.calls.push(call);
    return ride;
  }

  private batchOf(ride: Ride, batch: number): Batch {
    return { request_id: ride.request_id, batch, driver_ids: ride.notified.filter((n) => n.batch === batch).map((n) => n.driver_id) };
  }
}

function copy(ride: Ride): Ride {
  return { ...ride, notified: ride.notified.map((n) => ({ ...n })), calls: [...ride.calls] };
}

interface DispatchRequest { request_id: string; batch: number; batch_size: number; client_id: string; from: string }

export function driversServiceImpl(drivers: Drivers, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Dispatch(call: Call<DispatchRequest>, cb: Callback<Batch>) {
      const req = call.request;
      respond(cb, () => {
        const b = drivers.dispatch({ requestId: req.request_id, batch: req.batch, batchSize: req.batch_size, clientId: req.client_id, from: req.from });
        log.info('drivers notified', { requestId: b.request_id, batch: b.batch, drivers: b.driver_ids.length });
        return b;
      });
    },
    Release(call: Call<{ request_id: string; batch: number }>, cb: Callback<Batch>) {
      respond(cb, () => {
        const b = drivers.release(call.request.request_id, call.request.batch);
        log.info('drivers released', { requestId: b.request_id, batch: b.batch });
        return b;
      });
    },
    Assign(call: Call<{ request_id: string; driver_id: string; price: number }>, cb: Callback<Ride>) {
      const req = call.request;
      respond(cb, () => {
        const r = drivers.assign(req.request_id, req.driver_id, req.price);
        log.info('ride assigned', { requestId: r.request_id, driverId: r.driver_id, price: r.price });
        return r;
      });
    },
    Unassign(call: Call<{ request_id: string }>, cb: Callback<Ride>) {
      respond(cb, () => {
        const r = drivers.unassign(call.request.request_id);
        log.info('ride unassigned', { requestId: r.request_id });
        return r;
      });
    },
    ListRides(_call: Call<object>, cb: Callback<{ rides: Ride[] }>) {
      cb(null, { rides: drivers.all() });
    },
  };
}
