import { StepError } from '../../engine/errors';
import type { RetryPolicy } from '../../engine/retry';
import type { StepDefinition, WaitDefinition } from '../../engine/facade';
import { callOptionsOf, callUpstream, ignoreNotFound } from '../../grpc/call';
import { TOPICS } from '../../../topics/topics';
import type { Charge, Entry, TransferClients } from './clients';
import type { TransferInput } from './input';

export interface Debited { debitId: string }
export interface Charged { chargeId: string }
export interface Credited { creditId: string }

/** The event the webhook wait takes (SendEvent's `event`, or `event` on the events topic). */
export const WEBHOOK_EVENT = 'webhook';
/** What the gateway's webhook reports: the wait's output. */
export interface WebhookPayload { status: 'CONFIRMED' | 'DECLINED' }

/** The gateway answers UNAVAILABLE now and then: retried quickly (100 ms, doubling to 1 s, 6 attempts). */
export const GATEWAY_RETRY: Partial<RetryPolicy> = { maxAttempts: 6, initialBackoffMs: 100, maxBackoffMs: 1_000 };

/** Debits `from`; undone by refunding that debit (or, without its output, the debit made for the request, if any). */
export function debitNode(clients: TransferClients): StepDefinition<TransferInput, Debited> {
  return {
    name: 'debit',
    topic: TOPICS.transferDebit.name,
    async run(ctx) {
      const entry = await callUpstream<object, Entry>(clients.accounts, 'Debit', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, account: ctx.input.from, amount: ctx.input.amount,
      }, callOptionsOf(ctx));
      return { debitId: entry.id };
    },
    // NOT_FOUND: the debit never happened (and the accounts service will now refuse it for this request).
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Entry>(clients.accounts, 'Refund',
        ctx.output ? { entry_id: ctx.output.debitId, request_id: ctx.requestId } : { request_id: ctx.requestId }, callOptionsOf(ctx)));
    },
  };
}

/** Asks the payment gateway to charge; the outcome comes later, by webhook. Retried with backoff on UNAVAILABLE. */
export function gatewayNode(clients: TransferClients): StepDefinition<TransferInput, Charged> {
  return {
    name: 'gateway',
    after: ['debit'],
    topic: TOPICS.transferGateway.name,
    retry: GATEWAY_RETRY,
    async run(ctx) {
      const charge = await callUpstream<object, Charge>(clients.gateway, 'Charge', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, account: ctx.input.from, amount: ctx.input.amount,
      }, callOptionsOf(ctx));
      return { chargeId: charge.id };
    },
  };
}

/**
 * Waits for the gateway's webhook (input.webhookTimeoutMs; past it the wait fails with
 * DEADLINE_EXCEEDED and the debit is refunded). CONFIRMED goes on to credit; DECLINED fails the
 * saga with FAILED_PRECONDITION, which refunds the debit too.
 */
export function webhookNode(): WaitDefinition<TransferInput> {
  return {
    kind: 'wait',
    name: 'webhook',
    after: ['gateway'],
    events: [WEBHOOK_EVENT],
    timeoutMs: (input) => input.webhookTimeoutMs,
    branches: ['credit'],
    next(output) {
      const status = (output as Partial<WebhookPayload> | null)?.status;
      if (status === 'CONFIRMED') return 'credit';
      if (status === 'DECLINED') throw new StepError('FAILED_PRECONDITION', 'payment declined by the gateway', false);
      throw new StepError('INVALID_ARGUMENT', `webhook: status must be CONFIRMED or DECLINED, got ${JSON.stringify(status ?? null)}`, false);
    },
  };
}

/**
 * Credits `to`; reached by the webhook's CONFIRMED branch (so no `after`). Should it fail having
 * acted (e.g. timed out on every attempt), its compensation takes the credit back as the debit is refunded.
 */
export function creditNode(clients: TransferClients): StepDefinition<TransferInput, Credited> {
  return {
    name: 'credit',
    topic: TOPICS.transferCredit.name,
    async run(ctx) {
      const entry = await callUpstream<object, Entry>(clients.accounts, 'Credit', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, account: ctx.input.to, amount: ctx.input.amount,
      }, callOptionsOf(ctx));
      return { creditId: entry.id };
    },
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Entry>(clients.accounts, 'ReverseCredit',
        ctx.output ? { entry_id: ctx.output.creditId, request_id: ctx.requestId } : { request_id: ctx.requestId }, callOptionsOf(ctx)));
    },
  };
}
