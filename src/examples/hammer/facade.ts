import type { FacadeDefinition } from '../../engine/facade';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS } from '../../../topics/topics';
import type { HammerClients } from './clients';
import { parseHammerInput, type HammerInput } from './input';
import { hammerNode, handleNode, headNode, type HammerMade, type HandleMade, type HeadMade } from './nodes';

export const HAMMER = 'Hammer';

export interface HammerResult { headId: string; handleId: string; hammerId: string }

function result(results: Readonly<Record<string, unknown>>): HammerResult {
  return {
    headId: (results.head as HeadMade).headId,
    handleId: (results.handle as HandleMade).handleId,
    hammerId: (results.hammer as HammerMade).hammerId,
  };
}

/**
 * Seed 002's hammer: a head (external step, made by the head factory worker) and a handle made at
 * the same time, then a hammer from both. A failed hammer destroys the head; the handle stays.
 */
export function hammerFacade(clients: HammerClients): FacadeDefinition<HammerInput, HammerResult> {
  return {
    name: HAMMER,
    version: 1,
    mode: 'async',
    nodes: [headNode(clients), handleNode(clients), hammerNode(clients)],
    rollbackTopic: TOPICS.hammerRollback.name,
    parseInput: parseHammerInput,
    result,
  };
}

export function registerHammerFacade(registry: FacadeRegistry, clients: HammerClients): void {
  registry.register(hammerFacade(clients));
}
