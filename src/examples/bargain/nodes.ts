import { StepError } from '../../engine/errors';
import type { BranchContext, StepDefinition, WaitDefinition } from '../../engine/facade';
import { callOptionsOf, callUpstream, ignoreNotFound } from '../../grpc/call';
import { TOPICS } from '../../../topics/topics';
import type { BargainClients } from './clients';
import type { BargainInput } from './input';
import type { Batch, Ride } from './services/drivers-service';

/** The events of the contract (SendEvent's `event`, or `event` on the events topic). */
export const BARGAIN_EVENTS = {
  /** `{driverId}`: a notified driver takes the order at the suggested price. */
  acceptOrder: 'accept_order',
  /** `{driverId, price}`: a notified driver asks another price. */
  alternativePriceOffered: 'alternative_price_offered',
  /** `{driverId}`: the client takes the current offer (the driver must be the one who made it). */
  clientAccept: 'client_accept',
  /** `{by, reason}`: the client or a driver calls the order off, at any moment. */
  cancel: 'cancel',
} as const;

/** dispatch's output: this batch, and every driver notified of the order so far. */
export interface Dispatched { batch: number; driverIds: string[]; notified: string[]; dispatchedAt: number }
/** The offer on the table: the lowest a notified driver asked so far. */
export interface Offer { driverId: string; price: number; offeredAt: number }
/** The saga's output. */
export interface Match { driverId: string; price: number }
/** What a race outputs: the event that won and its payload, or the timeout. */
interface RaceOutcome { event: string; payload?: { driverId?: unknown; price?: unknown } }

type Ctx = BranchContext<BargainInput>;
const race = (output: unknown) => (output ?? {}) as RaceOutcome;
const dispatched = (ctx: { results: Readonly<Record<string, unknown>> }) => ctx.results.dispatch as Dispatched;
const offer = (ctx: { results: Readonly<Record<string, unknown>> }) => ctx.results.offer as Offer;
const notified = (ctx: Ctx, driverId: unknown): driverId is string => typeof driverId === 'string' && dispatched(ctx).notified.includes(driverId);
const validPrice = (price: unknown): price is number => typeof price === 'number' && Number.isFinite(price) && price > 0;

/**
 * Notifies the next batch of drivers near the client (the visit number is the batch number: each
 * loop back here is the next batch). Undone by releasing that batch.
 */
export function dispatchNode(clients: BargainClients): StepDefinition<BargainInput, Dispatched> {
  return {
    name: 'dispatch',
    topic: TOPICS.bargainDispatch.name,
    async run(ctx) {
      const b = await callUpstream<object, Batch>(clients.drivers, 'Dispatch', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, batch: ctx.visit, batch_size: ctx.input.batchSize,
        client_id: ctx.input.clientId, from: ctx.input.from, to: ctx.input.to, suggested_price: ctx.input.suggestedPrice,
      }, callOptionsOf(ctx));
      const before = (ctx.results.dispatch as Dispatched | undefined)?.notified ?? [];
      return { batch: b.batch, driverIds: b.driver_ids, notified: [...before, ...b.driver_ids], dispatchedAt: Date.now() };
    },
    // Without an output the batch is the visit's; NOT_FOUND: it was never dispatched (and now never will be).
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Batch>(clients.drivers, 'Release', { request_id: ctx.requestId, batch: ctx.output?.batch ?? ctx.visit }, callOptionsOf(ctx)));
    },
  };
}

/**
 * The drivers' race, for what is left of the batch's driverTimeoutMs: a notified driver accepts
 * (assign, at the suggested price) or offers a price (offer); on the timeout, the next batch, or,
 * after maxBatches, the order is given up (compensated). An answer from a driver who was never
 * notified, or an offer without a positive price, is ignored: the race goes on until the same deadline.
 */
export function awaitDriverNode(): WaitDefinition<BargainInput> {
  return {
    kind: 'wait',
    name: 'await_driver',
    after: ['dispatch'],
    events: [BARGAIN_EVENTS.acceptOrder, BARGAIN_EVENTS.alternativePriceOffered],
    timeoutMs: (input, results) => (results.dispatch as Dispatched).dispatchedAt + input.driverTimeoutMs - Date.now(),
    branches: ['await_driver', 'dispatch', 'offer', 'assign'],
    next(output, ctx) {
      const { event, payload } = race(output);
      if (event === 'timeout') {
        if (dispatched(ctx).batch < ctx.input.maxBatches) return 'dispatch';
        throw new StepError('DEADLINE_EXCEEDED', `no driver accepted or offered a price in ${ctx.input.maxBatches} batch(es)`, false);
      }
      if (!notified(ctx, payload?.driverId)) return 'await_driver';
      if (event === BARGAIN_EVENTS.acceptOrder) return 'assign';
      return validPrice(payload?.price) ? 'offer' : 'await_driver';
    },
  };
}

/** Puts a driver's price on the table: the newest offer, which is the lowest so far (await_client lets only lower ones through). */
export function offerNode(): StepDefinition<BargainInput, Offer> {
  return {
    name: 'offer',
    topic: TOPICS.bargainOffer.name,
    // The first offer won the drivers' race; a later one, the client's (no way leads back from there).
    run(ctx) {
      const won = race(ctx.results.await_client ?? ctx.results.await_driver).payload!;
      return Promise.resolve({ driverId: won.driverId as string, price: won.price as number, offeredAt: Date.now() });
    },
  };
}

/**
 * The client's race, for clientTimeoutMs from the offer: the client accepts it (assign, at the
 * offered price), a notified driver offers less (a new offer, a new clientTimeoutMs), or the
 * time runs out (the order is cancelled: compensated). An acceptance of another driver than the
 * offer's, or an offer that is not lower, is ignored until the same deadline.
 */
export function awaitClientNode(): WaitDefinition<BargainInput> {
  return {
    kind: 'wait',
    name: 'await_client',
    after: ['offer'],
    events: [BARGAIN_EVENTS.clientAccept, BARGAIN_EVENTS.alternativePriceOffered],
    timeoutMs: (input, results) => (results.offer as Offer).offeredAt + input.clientTimeoutMs - Date.now(),
    branches: ['await_client', 'offer', 'assign'],
    next(output, ctx) {
      const { event, payload } = race(output);
      if (event === 'timeout') throw new StepError('DEADLINE_EXCEEDED', 'the client did not accept an offer within clientTimeoutMs', false);
      if (event === BARGAIN_EVENTS.clientAccept) return payload?.driverId === offer(ctx).driverId ? 'assign' : 'await_client';
      return notified(ctx, payload?.driverId) && validPrice(payload?.price) && payload.price < offer(ctx).price ? 'offer' : 'await_client';
    },
  };
}

/**
 * Gives the ride to the driver the bargain settled on: the one who accepted (suggested price) or
 * the one whose offer the client accepted (offered price). The other drivers are released. Undone
 * (a cancel while it runs) by taking the ride back.
 */
export function assignNode(clients: BargainClients): StepDefinition<BargainInput, Match> {
  return {
    name: 'assign',
    topic: TOPICS.bargainAssign.name,
    async run(ctx) {
      const byClient = race(ctx.results.await_client).event === BARGAIN_EVENTS.clientAccept;
      const match: Match = byClient
        ? { driverId: offer(ctx).driverId, price: offer(ctx).price }
        : { driverId: race(ctx.results.await_driver).payload!.driverId as string, price: ctx.input.suggestedPrice };
      await callUpstream<object, Ride>(clients.drivers, 'Assign', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, driver_id: match.driverId, price: match.price,
      }, callOptionsOf(ctx));
      return match;
    },
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Ride>(clients.drivers, 'Unassign', { request_id: ctx.requestId }, callOptionsOf(ctx)));
    },
  };
}
