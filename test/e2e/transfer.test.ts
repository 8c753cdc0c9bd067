import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { HEADERS } from '../../src/engine/transport';
import { TRANSFER, type TransferResult } from '../../src/examples/transfer/facade';
import type { TransferInput } from '../../src/examples/transfer/input';
import { WEBHOOK_EVENT, type WebhookPayload } from '../../src/examples/transfer/nodes';
import { TOPICS } from '../../topics/topics';
import { KAFKA_BROKERS, testKafka, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, unreachable, waitFor } from '../helpers/wait';

/** The gateway refuses the first calls of every idempotency key: every transfer here retries it. */
const GATEWAY_UNAVAILABLE_FIRST = 2;

/**
 * Seed 001's transfer with a webhook on Kafka + Postgres: the orchestrator and the demo accounts
 * and gateway as separate processes; the test plays the gateway's webhook (SendEvent, or the
 * events topic).
 */
describe('transfer with webhook (seed 001) on Kafka + Postgres', function () {
  this.timeout(120_000);
  const names = uniqueKafkaNames();
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  before(async () => {
    db = await freshDatabase();
    stack = await Stack.start({
      transport: 'kafka', kafka: { ...names, brokers: KAFKA_BROKERS }, postgres: db.dsn, transfer: { gatewayUnavailableFirst: GATEWAY_UNAVAILABLE_FIRST },
    });
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
  });

  const transfer = (webhookTimeoutMs = 60_000): TransferInput => ({ from: 'alice', to: 'bob', amount: 1_250, webhookTimeoutMs });

  /** The accounts' entries of one request, as [kind, account, amount]. */
  async function entriesOf(requestId: string): Promise<[string, string, number][]> {
    const { entries } = (await call<{ entries: { request_id: string; kind: string; account: string; amount: string }[] }>(stack!.accounts, 'ListEntries', {})).response;
    return entries.filter((e) => e.request_id === requestId).map((e) => [e.kind, e.account, Number(e.amount)]);
  }

  /**
   * Once the gateway step is done, the saga waits for the webhook (recorded as started with the
   * gateway's outcome). A saga that stopped running never will: that fails at once, with why.
   */
  async function waitingForWebhook(requestId: string): Promise<void> {
    await waitFor(async () => {
      const saga = await stack!.saga(requestId);
      if (saga.status !== 'RUNNING') unreachable(`saga ${requestId} is ${saga.status} ${saga.error_code}: ${String(saga.error)}`);
      return saga.steps.some((s) => s.name === 'gateway' && s.status === 'SUCCEEDED');
    }, 60_000, `transfer ${requestId} to be charged`);
  }

  /**
   * The refund of the request's debit, as the accounts service received it: its Refund calls under
   * the compensation's idempotency key, which must be exactly the compensation attempts on the
   * saga's record (COMPENSATION_STARTED of debit), one of them successful. The ledger's entries
   * cannot tell: a repeated Refund answers the existing reversal without a new entry.
   */
  async function refundedOnce(requestId: string): Promise<void> {
    const { calls } = (await call<{ calls: { method: string; idempotency_key: string; count: number }[] }>(stack!.accounts, 'ListCalls', {})).response;
    const history = ((await stack!.saga(requestId)) as unknown as { history: { type: string; step: string }[] }).history;
    const started = history.filter((e) => e.type === 'COMPENSATION_STARTED' && e.step === 'debit').length;
    expect(history.filter((e) => e.type === 'COMPENSATION_SUCCEEDED').map((e) => e.step), 'compensations that succeeded').to.deep.equal(['debit']);
    expect(calls.filter((c) => c.idempotency_key.startsWith(`${requestId}:`) && c.method !== 'Debit')).to.deep.equal([
      { method: 'Refund', idempotency_key: `${requestId}:debit:compensate`, count: started },
    ]);
  }

  async function confirmed(requestId: string): Promise<TransferResult> {
    await stack!.startSaga(TRANSFER, transfer(), requestId);
    await waitingForWebhook(requestId);
    await stack!.sendEvent(requestId, WEBHOOK_EVENT, { status: 'CONFIRMED' } satisfies WebhookPayload, `${requestId}:webhook-1`);
    const saga = await stack!.sagaReaches(requestId, 'COMPLETED', 60_000);
    return JSON.parse(saga.output_json) as TransferResult;
  }

  it('CONFIRMED by SendEvent: COMPLETED, one debit of from and one credit of to', async () => {
    expect(await stack!.startSaga(TRANSFER, transfer(), 'tr-ok')).to.include({ request_id: 'tr-ok' });
    await waitingForWebhook('tr-ok');
    await stack!.sendEvent('tr-ok', WEBHOOK_EVENT, { status: 'CONFIRMED' } satisfies WebhookPayload, 'tr-ok:webhook-1');
    const saga = await stack!.sagaReaches('tr-ok', 'COMPLETED', 60_000);
    const output = JSON.parse(saga.output_json) as TransferResult;
    expect(output).to.have.all.keys('debitId', 'chargeId', 'creditId');
    expect(await entriesOf('tr-ok')).to.deep.equal([['DEBIT', 'alice', 1_250], ['CREDIT', 'bob', 1_250]]);
  });

  it('DECLINED on the events topic: COMPENSATED, the debit refunded once, nothing credited', async () => {
    await stack!.startSaga(TRANSFER, transfer(), 'tr-declined');
    await waitingForWebhook('tr-declined');
    const producer = testKafka().producer();
    await producer.connect();
    try {
      await producer.send({
        topic: names.topicPrefix + TOPICS.sagaEvents.name,
        messages: [{
          key: 'tr-declined',
          value: JSON.stringify({ event: WEBHOOK_EVENT, payload: { status: 'DECLINED' } satisfies WebhookPayload, idempotencyKey: 'tr-declined:webhook-1' }),
          headers: { [HEADERS.requestId]: 'tr-declined' },
        }],
      });
    } finally {
      await producer.disconnect();
    }
    const saga = await stack!.sagaReaches('tr-declined', 'COMPENSATED', 60_000);
    expect(saga.error_code).to.equal('FAILED_PRECONDITION');
    expect(await entriesOf('tr-declined')).to.deep.equal([['DEBIT', 'alice', 1_250], ['REFUND', 'alice', 1_250]]);
    await refundedOnce('tr-declined');
  });

  it('no webhook within webhookTimeoutMs: the wait fails with DEADLINE_EXCEEDED, COMPENSATED, the debit refunded once', async () => {
    await stack!.startSaga(TRANSFER, transfer(1_500), 'tr-timeout');
    const saga = await stack!.sagaReaches('tr-timeout', 'COMPENSATED', 60_000);
    expect(saga.error_code).to.equal('DEADLINE_EXCEEDED');
    expect(await entriesOf('tr-timeout')).to.deep.equal([['DEBIT', 'alice', 1_250], ['REFUND', 'alice', 1_250]]);
    await refundedOnce('tr-timeout');
  });

  it(`the gateway UNAVAILABLE for the first ${GATEWAY_UNAVAILABLE_FIRST} calls: retried with backoff, ${GATEWAY_UNAVAILABLE_FIRST + 1} calls, one charge, COMPLETED`, async () => {
    const { chargeId } = await confirmed('tr-flaky');
    const { calls } = (await call<{ calls: { method: string; idempotency_key: string; count: number }[] }>(stack!.gateway, 'ListCalls', {})).response;
    expect(calls.filter((c) => c.idempotency_key === 'tr-flaky:gateway')).to.deep.equal([{ method: 'Charge', idempotency_key: 'tr-flaky:gateway', count: GATEWAY_UNAVAILABLE_FIRST + 1 }]);
    const { charges } = (await call<{ charges: { id: string; request_id: string }[] }>(stack!.gateway, 'ListCharges', {})).response;
    expect(charges.filter((c) => c.request_id === 'tr-flaky').map((c) => c.id)).to.deep.equal([chargeId]);
  });

  it('a webhook for a finished transfer is refused with FAILED_PRECONDITION and changes nothing', async () => {
    await confirmed('tr-done');
    const err = await rejectionOf(stack!.sendEvent('tr-done', WEBHOOK_EVENT, { status: 'DECLINED' } satisfies WebhookPayload, 'tr-done:webhook-2'));
    expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect((await stack!.saga('tr-done')).status).to.equal('COMPLETED');
    expect(await entriesOf('tr-done')).to.deep.equal([['DEBIT', 'alice', 1_250], ['CREDIT', 'bob', 1_250]]);
  });
});
