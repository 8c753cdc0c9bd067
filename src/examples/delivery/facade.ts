import type { FacadeDefinition } from '../../engine/facade';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS } from '../../../topics/topics';
import type { DeliveryClients } from './clients';
import { parseDeliveryInput, type DeliveryInput } from './input';
import { deliveryNodes, type CheckedOut } from './nodes';

export const ORDER_DELIVERY = 'OrderDelivery';
export const DELIVERY_VERSIONS = [1, 2] as const;
export type DeliveryVersion = (typeof DELIVERY_VERSIONS)[number];

/**
 * How long an order may live from checkout to delivered (a week): past it the saga is compensated
 * as expired. It replaces the engine's async deadline (saga.asyncDeadlineMs, minutes), far too
 * short for a delivery.
 */
export const DELIVERY_EXPIRES_AFTER_MS = 7 * 86_400_000;

export interface DeliveryResult { reservationId: string; delivered: unknown }

function result(results: Readonly<Record<string, unknown>>): DeliveryResult {
  return { reservationId: (results.checkout as CheckedOut).reservationId, delivered: results.delivered ?? null };
}

/**
 * Seed 004's order delivery, a strict one-way state machine keyed by the order id (the request
 * id): checkout reserves the items, then each transition is an event from outside, refused when it
 * comes out of order. Version 2 adds `packed` between order_received and delivering.
 */
export function deliveryFacade(clients: DeliveryClients, version: DeliveryVersion): FacadeDefinition<DeliveryInput, DeliveryResult> {
  return {
    name: ORDER_DELIVERY,
    version,
    mode: 'async',
    strictEvents: true,
    expiresAfterMs: DELIVERY_EXPIRES_AFTER_MS,
    nodes: deliveryNodes(clients, version),
    rollbackTopic: TOPICS.deliveryRollback.name,
    parseInput: parseDeliveryInput,
    result,
  };
}

/** Registers the given versions (config examples.delivery.versions; default both). */
export function registerDeliveryFacades(registry: FacadeRegistry, clients: DeliveryClients, versions: readonly number[] = DELIVERY_VERSIONS): void {
  for (const v of versions) {
    if (!(DELIVERY_VERSIONS as readonly number[]).includes(v)) throw new Error(`examples.delivery.versions: ${ORDER_DELIVERY} has versions ${DELIVERY_VERSIONS.join(', ')}, not ${v}`);
    registry.register(deliveryFacade(clients, v as DeliveryVersion));
  }
}
