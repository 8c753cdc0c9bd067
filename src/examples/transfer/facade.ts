import type { FacadeDefinition } from '../../engine/facade';
import type { FacadeRegistry } from '../../engine/registry';
import { TOPICS } from '../../../topics/topics';
import type { TransferClients } from './clients';
import { parseTransferInput, type TransferInput } from './input';
import { creditNode, debitNode, gatewayNode, webhookNode, type Charged, type Credited, type Debited } from './nodes';

export const TRANSFER = 'Transfer';

export interface TransferResult { debitId: string; chargeId: string; creditId: string }

function result(results: Readonly<Record<string, unknown>>): TransferResult {
  return {
    debitId: (results.debit as Debited).debitId,
    chargeId: (results.gateway as Charged).chargeId,
    creditId: (results.credit as Credited).creditId,
  };
}

/**
 * Seed 001's transfer with a webhook: debit `from`, charge through the payment gateway (retried
 * on UNAVAILABLE), wait for the gateway's webhook, and credit `to` when it says CONFIRMED. DECLINED
 * or no webhook in time: the debit is refunded.
 */
export function transferFacade(clients: TransferClients): FacadeDefinition<TransferInput, TransferResult> {
  return {
    name: TRANSFER,
    version: 1,
    mode: 'async',
    nodes: [debitNode(clients), gatewayNode(clients), webhookNode(), creditNode(clients)],
    rollbackTopic: TOPICS.transferRollback.name,
    parseInput: parseTransferInput,
    result,
  };
}

export function registerTransferFacade(registry: FacadeRegistry, clients: TransferClients): void {
  registry.register(transferFacade(clients));
}
