import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { healthCheck, ROOT, Stack, call } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

const run = promisify(execFile);
const BUF = path.join(ROOT, 'node_modules', '.bin', 'buf');

/** The booking facades as a client sees them: separate processes, real gRPC, in-process transport. */
describe('booking over gRPC (embedded transport)', function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await Stack.start({ transport: 'memory' });
  });
  after(async () => {
    await stack?.stop();
  });

  it('sync booking returns the caller request id and the created order and payment', async () => {
    const { response, headers } = await call<{ RequestID: string; OrderID: string; PaymentID: string }>(stack.booking, 'HandleSyncBooking', { ProductID: 1, Count: 2 }, { 'x-request-id': 'r1' });
    expect(response.RequestID).to.equal('r1');
    expect(Number(response.OrderID)).to.be.greaterThan(0);
    expect(Number(response.PaymentID)).to.be.greaterThan(0);
    expect(headers.get('x-request-id')).to.deep.equal(['r1']);
    const order = (await call<{ status: string; id: string }>(stack.orders, 'GetOrder', { request_id: 'r1' })).response;
    expect(order).to.include({ status: 'CREATED', id: response.OrderID });
    const saga = await stack.saga('r1');
    expect(saga.status).to.equal('COMPLETED');
    expect(JSON.parse(saga.output_json)).to.deep.equal({ orderId: response.OrderID, paymentId: response.PaymentID });
  });

  it('sync booking with FaultInject fails ABORTED naming the payment node, then the order is cancelled', async () => {
    const err = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'r2' }));
    expect(err.code).to.equal(grpc.status.ABORTED);
    expect(err.message).to.contain('createPayment').and.contain('fault injected');
    const saga = await stack.sagaReaches('r2', 'COMPENSATED', 5_000);
    // The failed payment is compensated too (a failed call may have acted); the refund finds nothing to undo.
    expect(saga.steps.map((s) => [s.name, s.status])).to.deep.equal([['createOrder', 'STEP_COMPENSATED'], ['createPayment', 'STEP_COMPENSATED']]);
    const order = (await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'r2' })).response;
    expect(order.status).to.equal('CANCELLED');
    const payment = await rejectionOf(call(stack.payments, 'GetPayment', { request_id: 'r2' }));
    expect(payment.code).to.equal(grpc.status.NOT_FOUND);
    // The upstreams saw each call once, under the keys the durability audit counts by.
    const calls = await stack.upstreamCalls();
    expect(Object.fromEntries([...calls].filter(([key]) => key.startsWith('r2:')))).to.deep.equal({
      'r2:createOrder': { CreateOrder: 1 },
      'r2:createPayment': { CreatePayment: 1 },
      'r2:createOrder:compensate': { CancelOrder: 1 },
      'r2:createPayment:compensate': { RefundPayment: 1 },
    });
  });

  it('ListFacades shows every booking facade: mode, version, nodes and the graph as Mermaid', async () => {
    type Facade = { name: string; mode: string; version: number; nodes: { name: string; kind: string; after: string[]; topic: string; compensable: boolean }[]; mermaid: string };
    const { facades } = (await call<{ facades: Facade[] }>(stack.sagas, 'ListFacades', {})).response;
    expect(facades.map((f) => [f.name, f.mode, f.version])).to.deep.equal([
      ['SyncBooking', 'sync', 1], ['AsyncBooking', 'async', 1], ['ThrottledBooking', 'throttled', 1], ['Hammer', 'async', 1], ['Transfer', 'async', 1],
      ['OrderDelivery', 'async', 1], ['OrderDelivery', 'async', 2], ['Bargain', 'async', 1],
    ]);
    const async = facades.find((f) => f.mode === 'async')!;
    expect(async.nodes).to.deep.equal([
      { name: 'createOrder', kind: 'step', after: [], topic: 'booking.async.create-order', compensable: true, branches: [], events: [] },
      { name: 'createPayment', kind: 'step', after: ['createOrder'], topic: 'booking.async.create-payment', compensable: true, branches: [], events: [] },
    ]);
    expect(async.mermaid).to.match(/^flowchart LR\n/).and.contain('n0 --> n1');
  });

  it('generates a request id when the caller sends none, and returns it', async () => {
    const { response, headers } = await call<{ RequestID: string }>(stack.booking, 'HandleSyncBooking', { ProductID: 3 });
    expect(response.RequestID).to.match(/^[0-9a-f-]{36}$/);
    expect(headers.get('x-request-id')).to.deep.equal([response.RequestID]);
    expect((await stack.saga(response.RequestID)).status).to.equal('COMPLETED');
  });

  it('async booking answers with the request id at once, then completes', async () => {
    // The payment takes 2 s: answered with the saga still running, the call did not wait for it.
    const { response } = await call<{ RequestID: string }>(stack.booking, 'HandleAsyncBooking', { ProductID: 1, DelayMs: 2000 }, { 'x-request-id': 'a1' });
    expect(response.RequestID).to.equal('a1');
    expect((await stack.saga('a1')).status).to.equal('RUNNING');
    await stack.sagaReaches('a1', 'COMPLETED');
    expect((await call<{ status: string }>(stack.payments, 'GetPayment', { request_id: 'a1' })).response.status).to.equal('PAID');
  });

  it('async booking with FaultInject is compensated', async () => {
    await call(stack.booking, 'HandleAsyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'a2' });
    await stack.sagaReaches('a2', 'COMPENSATED');
    expect((await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'a2' })).response.status).to.equal('CANCELLED');
  });

  const invalid: [string, object, Record<string, string>, string][] = [
    ['ProductID 0', { ProductID: 0 }, {}, 'ProductID'],
    ['a negative Count', { ProductID: 1, Count: -1 }, {}, 'Count'],
    ['a malformed x-request-id', { ProductID: 1 }, { 'x-request-id': 'has spaces in it' }, 'x-request-id'],
  ];
  for (const [what, request, metadata, field] of invalid) {
    it(`answers INVALID_ARGUMENT naming ${field} for ${what}`, async () => {
      const err = await rejectionOf(call(stack.booking, 'HandleSyncBooking', request, metadata));
      expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err.details).to.match(new RegExp(`^${field}: `));
    });
  }

  it('answers a repeated request id with the first response, without booking again', async () => {
    const first = (await call<{ id: string }>(stack.orders, 'GetOrder', { request_id: 'r1' })).response;
    const { response } = await call<{ RequestID: string; OrderID: string }>(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'r1' });
    expect(response).to.include({ RequestID: 'r1', OrderID: first.id });
    // The same order would come back from a second CreateOrder too (same key): the calls tell.
    const calls = await stack.upstreamCalls();
    expect([calls.get('r1:createOrder'), calls.get('r1:createPayment')]).to.deep.equal([{ CreateOrder: 1 }, { CreatePayment: 1 }]);
    const again = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'r2' }));
    expect(again.code).to.equal(grpc.status.ABORTED);
  });

  it('throttled booking blocks until the saga completes through the topics', async () => {
    const { response } = await call<{ RequestID: string; OrderID: string; PaymentID: string }>(stack.booking, 'HandleThrottlingBooking', { ProductID: 1 }, { 'x-request-id': 't1' });
    expect(response.RequestID).to.equal('t1');
    expect(Number(response.PaymentID)).to.be.greaterThan(0);
    expect((await stack.saga('t1')).mode).to.equal('throttled');
  });

  it('ListSagas filters by facade and status, newest first, with paging', async () => {
    type Listed = { sagas: { request_id: string; facade: string; status: string }[]; next_page_token: string };
    /** Every page of a listing, `pageSize` at a time: the request ids in the order listed, and how many pages. */
    const listAll = async (filter: object, pageSize: number) => {
      const ids: string[] = [];
      let pages = 0;
      let token = '';
      do {
        const page = (await call<Listed>(stack.sagas, 'ListSagas', { ...filter, page_size: pageSize, page_token: token })).response;
        expect(page.sagas.length, 'a page').to.be.at.most(pageSize);
        ids.push(...page.sagas.map((x) => x.request_id));
        token = page.next_page_token;
        pages++;
      } while (token !== '');
      return { ids, pages };
    };
    // This test's own sagas, one after another (the store orders by creation), from `since` on:
    // SyncBooking COMPLETED ones with an AsyncBooking COMPLETED and a SyncBooking COMPENSATED between them.
    const since = new Date().toISOString();
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'ls-1' });
    await call(stack.booking, 'HandleAsyncBooking', { ProductID: 1 }, { 'x-request-id': 'ls-other-facade' });
    await stack.sagaReaches('ls-other-facade', 'COMPLETED');
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'ls-2' });
    await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'ls-other-status' }));
    await stack.sagaReaches('ls-other-status', 'COMPENSATED');
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'ls-3' });
    const mine = { created_from: since };
    // Exactly the three, newest first, over three pages of one.
    expect(await listAll({ ...mine, facade: 'SyncBooking', status: 'COMPLETED' }, 1)).to.deep.equal({ ids: ['ls-3', 'ls-2', 'ls-1'], pages: 3 });
    // Each filter on its own lets the saga the other one drops through: both filters did the work above.
    expect((await listAll({ ...mine, status: 'COMPLETED' }, 2)).ids).to.deep.equal(['ls-3', 'ls-2', 'ls-other-facade', 'ls-1']);
    expect((await listAll({ ...mine, facade: 'SyncBooking' }, 2)).ids).to.deep.equal(['ls-3', 'ls-other-status', 'ls-2', 'ls-1']);
    // Without the time filter: the earlier sagas of this suite follow, still only SyncBooking COMPLETED, none twice.
    const all = await listAll({ facade: 'SyncBooking', status: 'COMPLETED' }, 2);
    expect(all.ids.slice(0, 3)).to.deep.equal(['ls-3', 'ls-2', 'ls-1']);
    expect(all.ids).to.include('r1').and.not.include.members(['r2', 'a1', 'ls-other-facade', 'ls-other-status']);
    expect(new Set(all.ids).size).to.equal(all.ids.length);
    const bad = await rejectionOf(call(stack.sagas, 'ListSagas', { page_token: 'garbage!' }));
    expect(bad.details).to.match(/^page_token: /);
    // FAILED stays in the proto (wire compatibility) but no saga ever has it.
    expect((await call(stack.sagas, 'ListSagas', { status: 'FAILED' })).response).to.deep.equal({ sagas: [], next_page_token: '' });
  });

  it('CancelSaga compensates a running saga, and refuses a finished one with FAILED_PRECONDITION', async () => {
    await call(stack.booking, 'HandleAsyncBooking', { ProductID: 1, DelayMs: 2000 }, { 'x-request-id': 'cancel-1' });
    await waitFor(async () => (await stack.saga('cancel-1')).steps[1].status === 'STEP_RUNNING', 5_000, 'the payment step to run');
    const { response } = await call<{ status: string }>(stack.sagas, 'CancelSaga', { request_id: 'cancel-1' });
    expect(response.status).to.equal('COMPENSATING');
    await stack.sagaReaches('cancel-1', 'COMPENSATED');
    expect((await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'cancel-1' })).response.status).to.equal('CANCELLED');
    const err = await rejectionOf(call(stack.sagas, 'CancelSaga', { request_id: 'r1' }));
    expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
  });

  it('GetSaga: NOT_FOUND for an unknown id, INVALID_ARGUMENT without one, history with timestamps', async () => {
    expect((await rejectionOf(call(stack.sagas, 'GetSaga', { request_id: 'nope' }))).code).to.equal(grpc.status.NOT_FOUND);
    expect((await rejectionOf(call(stack.sagas, 'GetSaga', {}))).details).to.equal('request_id: required');
    const history = (await stack.saga('r1')).history as { type: string; at: string }[];
    expect(history.map((e) => e.type)).to.deep.equal(['SAGA_STARTED', 'STEP_STARTED', 'STEP_SUCCEEDED', 'STEP_STARTED', 'STEP_SUCCEEDED', 'SAGA_COMPLETED']);
    for (const e of history) expect(Date.parse(e.at)).to.be.a('number').and.not.NaN;
  });

  it('logs JSON lines carrying the request id, facade, node and pod id', () => {
    const lines = stack.orchestrator.logs().filter((l) => l.requestId === 'r2');
    expect(lines.length).to.be.greaterThan(3);
    for (const l of lines) expect(l).to.include({ podId: 'e2e' }).and.to.have.property('level');
    expect(lines.some((l) => l.node === 'createPayment' && l.facade === 'SyncBooking')).to.equal(true);
  });

  it('serves reflection (buf curl lists the services) and health SERVING', async () => {
    const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://${stack.address}`]);
    expect(stdout.split('\n')).to.include.members(['pb.BookingService', 'orchestrator.v1.OrchestratorService']);
    expect(await healthCheck(stack.address)).to.equal('SERVING');
    expect(await healthCheck(stack.address, 'pb.BookingService')).to.equal('SERVING');
  });

  it('buf curl books with x-request-id as the README shows', async () => {
    const { stdout } = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-H', 'x-request-id: buf-1',
      '-d', '{"ProductID":"1","FaultInject":false}', `http://${stack.address}/pb.BookingService/HandleSyncBooking`]);
    expect(JSON.parse(stdout)).to.include({ RequestID: 'buf-1' });
  });
});
