import type { FacadeDefinition } from '../../engine/facade';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS } from '../../../topics/topics';
import type { BargainClients } from './clients';
import { parseBargainInput, type BargainInput } from './input';
import { assignNode, awaitClientNode, awaitDriverNode, BARGAIN_EVENTS, dispatchNode, offerNode, type Match } from './nodes';

export const BARGAIN = 'Bargain';

/** An order not matched within an hour of its start is given up (compensated as expired), whatever its timeouts. */
export const BARGAIN_EXPIRES_AFTER_MS = 3_600_000;

/**
 * Seed 000's ride-hailing bargain: dispatch to a batch of drivers, race their answers against a
 * timeout (the next batch, in a loop), then race the client's decision against lower offers and a
 * timeout. A `cancel` event from anyone is accepted at any moment.
 */
export function bargainFacade(clients: BargainClients): FacadeDefinition<BargainInput, Match> {
  return {
    name: BARGAIN,
    version: 1,
    mode: 'async',
    cancelEvent: BARGAIN_EVENTS.cancel,
    expiresAfterMs: BARGAIN_EXPIRES_AFTER_MS,
    nodes: [dispatchNode(clients), awaitDriverNode(), offerNode(), awaitClientNode(), assignNode(clients)],
    rollbackTopic: TOPICS.bargainRollback.name,
    parseInput: parseBargainInput,
    result: (results) => results.assign as Match,
  };
}

export function registerBargainFacade(registry: FacadeRegistry, clients: BargainClients): void {
  registry.register(bargainFacade(clients));
}
