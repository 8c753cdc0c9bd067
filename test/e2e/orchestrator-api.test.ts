import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { Stack, call } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

interface Visit { visit: number; status: string; attempts: number; output_json: string; error: string; started_at: string; ended_at: string; wake_at: string }
interface SagaView { status: string; nodes: { name: string; kind: string; visits: Visit[] }[]; waiting: unknown[]; mermaid: string }

/** The generic API of orchestrator.v1.OrchestratorService (any facade, by name), over gRPC. */
describe('orchestrator.v1 generic API over gRPC (embedded transport)', function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await Stack.start({ transport: 'memory' });
  });
  after(async () => {
    await stack?.stop();
  });

  const invalid = async (method: string, request: object, field: string) => {
    const err = await rejectionOf(call(stack.sagas, method, request));
    expect(err.code, `${method} ${JSON.stringify(request)}: ${err.details as string}`).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err.details).to.match(new RegExp(`^${field}: `));
  };

  it('StartSaga starts AsyncBooking under the caller request id, answers at once, and the saga completes', async () => {
    // The payment takes 1.5 s: answered while the saga still runs, the call did not wait for it.
    const input = JSON.stringify({ ProductID: 1, Count: 2, DelayMs: 1500 });
    const { response, headers } = await call<{ request_id: string }>(stack.sagas, 'StartSaga', { facade: 'AsyncBooking', input_json: input }, { 'x-request-id': 'start-1' });
    expect(response.request_id).to.equal('start-1');
    expect(headers.get('x-request-id')).to.deep.equal(['start-1']);
    expect((await stack.saga('start-1')).status).to.equal('RUNNING');
    const saga = await stack.sagaReaches('start-1', 'COMPLETED');
    expect(saga).to.include({ facade: 'AsyncBooking', mode: 'async', version: 1 });
    expect((await call<{ status: string; count: string }>(stack.orders, 'GetOrder', { request_id: 'start-1' })).response).to.include({ status: 'CREATED', count: '2' });
  });

  it('GetSaga shows the graph: each node with its visit, no waits, and the path taken as Mermaid', async () => {
    const saga = (await call<SagaView>(stack.sagas, 'GetSaga', { request_id: 'start-1' })).response;
    expect(saga.nodes.map((n) => [n.name, n.kind, n.visits.map((v) => [v.visit, v.status, v.attempts])])).to.deep.equal([
      ['createOrder', 'step', [[1, 'SUCCEEDED', 1]]],
      ['createPayment', 'step', [[1, 'SUCCEEDED', 1]]],
    ]);
    const payment = saga.nodes[1].visits[0];
    expect(JSON.parse(payment.output_json)).to.have.property('paymentId');
    expect(Date.parse(payment.ended_at)).to.be.at.least(Date.parse(payment.started_at));
    expect(saga.waiting).to.deep.equal([]);
    expect(saga.mermaid).to.match(/^flowchart LR\n/).and.contain('n0 --> n1').and.contain('class n0 done').and.contain('class n1 done');
    // ListSagas stays cheap: no graph.
    const { sagas } = (await call<{ sagas: SagaView[] }>(stack.sagas, 'ListSagas', { facade: 'AsyncBooking' })).response;
    expect(sagas.map((s) => [s.nodes, s.mermaid])).to.deep.equal([[[], '']]);
  });

  it('StartSaga of a sync facade answers with the request id; the saga runs to its end without the caller', async () => {
    const { response } = await call<{ request_id: string }>(stack.sagas, 'StartSaga', { facade: 'SyncBooking', input_json: '{"ProductID":2,"FaultInject":true}' });
    expect(response.request_id).to.match(/^[0-9a-f-]{36}$/);
    // Not awaited by the call: the saga may be recorded just after the answer.
    const saga = await waitFor(async () => {
      const s = await stack.saga(response.request_id).catch(() => undefined);
      return s?.status === 'COMPENSATED' ? (s as unknown as SagaView) : undefined;
    }, 10_000, 'the sync saga to be compensated');
    expect(saga.nodes.map((n) => n.visits.map((v) => v.status))).to.deep.equal([['STEP_COMPENSATED'], ['STEP_COMPENSATED']]);
    expect(saga.mermaid).to.contain('class n0 compensated').and.contain('class n1 failed');
  });

  it('StartSaga refuses an unknown facade or version with NOT_FOUND, and a bad input with INVALID_ARGUMENT naming the field', async () => {
    const unknown = await rejectionOf(call(stack.sagas, 'StartSaga', { facade: 'NoSuchFacade', input_json: '{}' }));
    expect(unknown.code).to.equal(grpc.status.NOT_FOUND);
    expect(unknown.details).to.contain('facade NoSuchFacade');
    const version = await rejectionOf(call(stack.sagas, 'StartSaga', { facade: 'AsyncBooking', input_json: '{"ProductID":1}', version: 7 }));
    expect(version.code).to.equal(grpc.status.NOT_FOUND);
    expect(version.details).to.contain('facade AsyncBooking version 7');
    await invalid('StartSaga', { facade: 'AsyncBooking', input_json: '{"ProductID":' }, 'input_json');
    await invalid('StartSaga', { input_json: '{"ProductID":1}' }, 'facade');
    await invalid('StartSaga', { facade: 'AsyncBooking', input_json: '{"ProductID":1}', version: -1 }, 'version');
    // The facade's own checks, before anything runs (sync facades too).
    await invalid('StartSaga', { facade: 'SyncBooking', input_json: '{"ProductID":0}' }, 'ProductID');
    await invalid('StartSaga', { facade: 'AsyncBooking' }, 'ProductID');
  });

  it('SendEvent, CompleteStep and FailStep refuse missing or malformed fields with INVALID_ARGUMENT naming them', async () => {
    await invalid('SendEvent', { request_id: 'start-1', payload_json: '{}' }, 'event');
    await invalid('SendEvent', { event: 'approved' }, 'request_id');
    await invalid('SendEvent', { request_id: 'start-1', event: 'approved', payload_json: '[1,2]' }, 'payload_json');
    await invalid('SendEvent', { request_id: 'start-1', event: 'approved', payload_json: 'not json' }, 'payload_json');
    await invalid('CompleteStep', { request_id: 'start-1', output_json: '{}' }, 'step');
    await invalid('CompleteStep', { request_id: 'start-1', step: 'createOrder', output_json: '{' }, 'output_json');
    await invalid('FailStep', { request_id: 'start-1', step: 'createOrder' }, 'error');
    await invalid('FailStep', { step: 'createOrder', error: 'boom' }, 'request_id');
  });

  it('refuses \\u0000, lone surrogates and values over limits.maxPayloadBytes (256 KiB by default) in every JSON field, naming the field', async () => {
    await invalid('SendEvent', { request_id: 'start-1', event: 'approved', payload_json: '{"note":"a\\u0000"}' }, 'payload_json\\.note');
    await invalid('CompleteStep', { request_id: 'start-1', step: 'createOrder', output_json: '["\\ud800"]' }, 'output_json\\[0\\]');
    await invalid('FailStep', { request_id: 'start-1', step: 'createOrder', error: 'boom\u0000' }, 'error');
    await invalid('StartSaga', { facade: 'AsyncBooking', input_json: '{"ProductID":1,"note":"\\udc00"}' }, 'input_json\\.note');
    const pad = JSON.stringify({ ProductID: 1, pad: 'x'.repeat(300 * 1024) });
    await invalid('StartSaga', { facade: 'AsyncBooking', input_json: pad }, 'input_json');
    const big = await rejectionOf(call(stack.sagas, 'SendEvent', { request_id: 'start-1', event: 'approved', payload_json: pad }));
    expect(big.details).to.match(/^payload_json: \d+ bytes of JSON, over the limit of 262144 bytes \(limits\.maxPayloadBytes\)/);
  });

  it('SendEvent, CompleteStep and FailStep: NOT_FOUND for an unknown saga, INVALID_ARGUMENT for an event nobody waits for, FAILED_PRECONDITION for a step the orchestrator runs', async () => {
    for (const [method, request] of [
      ['SendEvent', { request_id: 'nope', event: 'approved' }],
      ['CompleteStep', { request_id: 'nope', step: 'createOrder' }],
      ['FailStep', { request_id: 'nope', step: 'createOrder', error: 'boom' }],
    ] as const) {
      expect((await rejectionOf(call(stack.sagas, method, request))).code, method).to.equal(grpc.status.NOT_FOUND);
    }
    // A saga the store does not have may have finished and been deleted: the answer says after how long.
    const gone = await rejectionOf(call(stack.sagas, 'GetSaga', { request_id: 'nope' }));
    expect([gone.code, gone.details]).to.deep.equal([grpc.status.NOT_FOUND,
      'saga nope not found: finished sagas are deleted after saga.retentionMs (7d, unless its facade sets its own)']);
    // The booking facades are lines of steps the orchestrator runs itself: no waits, no external steps.
    const never = await rejectionOf(call(stack.sagas, 'SendEvent', { request_id: 'start-1', event: 'approved' }));
    expect(never.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(never.details).to.match(/never waits for approved; it accepts no events/);
    expect((await rejectionOf(call(stack.sagas, 'CompleteStep', { request_id: 'start-1', step: 'createOrder', output_json: '{}' }))).code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect((await rejectionOf(call(stack.sagas, 'FailStep', { request_id: 'start-1', step: 'noSuchStep', error: 'boom' }))).code).to.equal(grpc.status.NOT_FOUND);
  });
});
