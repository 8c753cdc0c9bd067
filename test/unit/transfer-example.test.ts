import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { StepError, ValidationError } from '../../src/engine/errors';
import type { StepDefinition, WaitDefinition } from '../../src/engine/facade';
import { createTransferClients, type TransferClients } from '../../src/examples/transfer/clients';
import { TRANSFER, transferFacade } from '../../src/examples/transfer/facade';
import { DEFAULT_WEBHOOK_TIMEOUT_MS, parseTransferInput, type TransferInput } from '../../src/examples/transfer/input';
import { GATEWAY_RETRY } from '../../src/examples/transfer/nodes';
import { AccountsLedger } from '../../src/examples/transfer/services/accounts-service';
import { PaymentGateway, unavailableFirstFrom } from '../../src/examples/transfer/services/gateway-service';
import { TOPICS } from '../../topics/topics';
import { nodeContext, serveAccounts, serveGateway, type InProcessService } from '../helpers/demo-services';
import { call } from '../helpers/stack';
import { rejectionOf } from '../helpers/wait';

describe('transfer example: input', () => {
  it('defaults webhookTimeoutMs to 30 s', () => {
    expect(parseTransferInput({ from: 'alice', to: 'bob', amount: 500 })).to.deep.equal({ from: 'alice', to: 'bob', amount: 500, webhookTimeoutMs: DEFAULT_WEBHOOK_TIMEOUT_MS });
    expect(DEFAULT_WEBHOOK_TIMEOUT_MS).to.equal(30_000);
    expect(parseTransferInput({ from: 'alice', to: 'bob', amount: 1, webhookTimeoutMs: 1500 }).webhookTimeoutMs).to.equal(1500);
  });

  const bad: [string, unknown, string][] = [
    ['no object', [], 'input'],
    ['no from', { to: 'bob', amount: 1 }, 'from'],
    ['an empty to', { from: 'alice', to: '', amount: 1 }, 'to'],
    ['to equal to from', { from: 'alice', to: 'alice', amount: 1 }, 'to'],
    ['a zero amount', { from: 'alice', to: 'bob', amount: 0 }, 'amount'],
    ['a fractional amount', { from: 'alice', to: 'bob', amount: 1.5 }, 'amount'],
    ['a text amount', { from: 'alice', to: 'bob', amount: '10' }, 'amount'],
    ['a zero webhookTimeoutMs', { from: 'alice', to: 'bob', amount: 1, webhookTimeoutMs: 0 }, 'webhookTimeoutMs'],
  ];
  for (const [what, raw, field] of bad) {
    it(`rejects ${what}, naming ${field}`, () => {
      expect(() => parseTransferInput(raw)).to.throw(ValidationError).with.property('field', field);
    });
  }
});

describe('transfer example: the facade and its nodes against the demo accounts and gateway', () => {
  let accounts: InProcessService<AccountsLedger>;
  let gateway: InProcessService<PaymentGateway>;
  let clients: TransferClients;
  const node = (name: string) => transferFacade(clients).nodes.find((n) => n.name === name)!;
  const step = (name: string) => node(name) as StepDefinition<TransferInput, Record<string, string>>;
  const input: TransferInput = { from: 'alice', to: 'bob', amount: 250, webhookTimeoutMs: 1500 };
  const entriesOf = (requestId: string) => accounts.state.all().filter((e) => e.request_id === requestId).map((e) => [e.kind, e.account, e.amount, e.reverses]);

  before(async () => {
    accounts = await serveAccounts();
    gateway = await serveGateway(new PaymentGateway(2));
    clients = createTransferClients({ accounts: accounts.address, gateway: gateway.address });
  });
  after(async () => {
    clients.close();
    await accounts.stop();
    await gateway.stop();
  });

  it('is the graph of the contract: debit, gateway, webhook wait branching to credit', () => {
    const def = transferFacade(clients);
    expect([def.name, def.version, def.mode, def.rollbackTopic]).to.deep.equal([TRANSFER, 1, 'async', TOPICS.transferRollback.name]);
    expect(def.nodes.map((n) => [n.name, n.kind ?? 'step', n.after ?? [], n.branches ?? []])).to.deep.equal([
      ['debit', 'step', [], []], ['gateway', 'step', ['debit'], []], ['webhook', 'wait', ['gateway'], ['credit']], ['credit', 'step', [], []],
    ]);
    const webhook = node('webhook') as WaitDefinition<TransferInput>;
    expect(webhook.events).to.deep.equal(['webhook']);
    expect((webhook.timeoutMs as (i: TransferInput, results: object) => number)(input, {})).to.equal(1500);
    expect(step('gateway').retry).to.deep.equal(GATEWAY_RETRY);
    expect(GATEWAY_RETRY.initialBackoffMs).to.equal(100);
    expect(['debit', 'gateway', 'credit'].map((name) => typeof step(name).compensate)).to.deep.equal(['function', 'undefined', 'function']);
    expect(def.result({ debit: { debitId: 'd' }, gateway: { chargeId: 'c' }, credit: { creditId: 'k' } })).to.deep.equal({ debitId: 'd', chargeId: 'c', creditId: 'k' });
  });

  it('the webhook\'s branch: CONFIRMED goes to credit; DECLINED fails with FAILED_PRECONDITION, anything else with INVALID_ARGUMENT, neither retried', () => {
    const webhook = node('webhook') as WaitDefinition<TransferInput>;
    const ctx = { requestId: 'w', input, results: {}, visit: 1 };
    expect(webhook.next!({ status: 'CONFIRMED' }, ctx)).to.equal('credit');
    const declined = (() => { try { webhook.next!({ status: 'DECLINED' }, ctx); } catch (err) { return err as StepError; } })();
    expect(declined).to.be.instanceOf(StepError);
    expect(declined).to.include({ code: 'FAILED_PRECONDITION', retryable: false, message: 'payment declined by the gateway' });
    expect(() => webhook.next!({ state: 'ok' }, ctx)).to.throw(StepError, /status must be CONFIRMED or DECLINED/).with.property('code', 'INVALID_ARGUMENT');
  });

  it('debit, gateway (UNAVAILABLE twice: retryable StepErrors, then the charge), credit; every call under the step\'s key', async () => {
    const debit = await step('debit').run(nodeContext('t1', 'debit', input));
    expect(debit).to.deep.equal({ debitId: 'entry-1' });
    for (let i = 0; i < 2; i++) {
      const err = await rejectionOf(step('gateway').run(nodeContext('t1', 'gateway', input)));
      expect(err).to.be.instanceOf(StepError);
      expect(err).to.include({ code: 'UNAVAILABLE', retryable: true });
    }
    expect(await step('gateway').run(nodeContext('t1', 'gateway', input))).to.deep.equal({ chargeId: 'charge-1' });
    expect(await step('credit').run(nodeContext('t1', 'credit', input))).to.deep.equal({ creditId: 'entry-2' });
    expect(await step('credit').run(nodeContext('t1', 'credit', input)), 'idempotent').to.deep.equal({ creditId: 'entry-2' });
    expect(entriesOf('t1')).to.deep.equal([['DEBIT', 'alice', 250, ''], ['CREDIT', 'bob', 250, '']]);
    expect(gateway.calls.all()).to.deep.equal([{ method: 'Charge', idempotency_key: 't1:gateway', count: 3 }]);
    expect(gateway.state.all()).to.deep.equal([{ id: 'charge-1', request_id: 't1', account: 'alice', amount: 250, status: 'PENDING' }]);
  });

  it('debit\'s compensation refunds the debit of its output once, however often it runs', async () => {
    const debit = await step('debit').run(nodeContext('t2', 'debit', input));
    await step('debit').compensate!(nodeContext('t2', 'debit', input, {}, debit));
    await step('debit').compensate!(nodeContext('t2', 'debit', input, {}, debit));
    expect(entriesOf('t2')).to.deep.equal([['DEBIT', 'alice', 250, ''], ['REFUND', 'alice', 250, debit.debitId]]);
  });

  it('debit\'s compensation without an output tolerates that the debit never happened, which can then no longer happen', async () => {
    await step('debit').compensate!(nodeContext('t3', 'debit', input, {}, undefined));
    const err = await rejectionOf(step('debit').run(nodeContext('t3', 'debit', input)));
    expect(err).to.include({ code: 'FAILED_PRECONDITION', retryable: false });
    expect(entriesOf('t3')).to.deep.equal([]);
    // With one: refunded by request id.
    await step('debit').run(nodeContext('t4', 'debit', input));
    await step('debit').compensate!(nodeContext('t4', 'debit', input, {}, undefined));
    expect(entriesOf('t4').map(([kind]) => kind)).to.deep.equal(['DEBIT', 'REFUND']);
  });

  it('credit\'s compensation takes the credit back', async () => {
    const credit = await step('credit').run(nodeContext('t5', 'credit', input));
    await step('credit').compensate!(nodeContext('t5', 'credit', input, {}, credit));
    expect(entriesOf('t5')).to.deep.equal([['CREDIT', 'bob', 250, ''], ['CREDIT_REVERSAL', 'bob', 250, credit.creditId]]);
  });

  it('the accounts keep balances; ListEntries and ListCalls answer over gRPC', async () => {
    const { entries } = (await call<{ entries: { kind: string; balance: string; amount: string }[] }>(accounts.client, 'ListEntries', {})).response;
    expect(entries.length).to.equal(accounts.state.all().length);
    expect(entries[0]).to.include({ kind: 'DEBIT', amount: '250', balance: '-250' });
    expect((await rejectionOf(call(accounts.client, 'Refund', { entry_id: 'entry-999' }))).code).to.equal(grpc.status.NOT_FOUND);
    const counts = (await call<{ calls: { method: string }[] }>(accounts.client, 'ListCalls', {})).response.calls;
    expect(counts.map((c) => c.method)).to.include.members(['Debit', 'Credit', 'Refund', 'ReverseCredit']);
  });

  it('DEMO_GATEWAY_UNAVAILABLE_FIRST: an integer >= 0, 0 when unset', () => {
    expect(unavailableFirstFrom({})).to.equal(0);
    expect(unavailableFirstFrom({ DEMO_GATEWAY_UNAVAILABLE_FIRST: '2' })).to.equal(2);
    expect(() => unavailableFirstFrom({ DEMO_GATEWAY_UNAVAILABLE_FIRST: 'x' })).to.throw(/DEMO_GATEWAY_UNAVAILABLE_FIRST/);
  });
});
