import { expect } from 'chai';
import { SYNC_BOOKING } from '../../src/examples/booking/facades';
import { TRANSFER } from '../../src/examples/transfer/facade';
import { WEBHOOK_EVENT } from '../../src/examples/transfer/nodes';
import { call, Stack } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

type Body = Record<string, unknown> & { error?: string; code?: string; field?: string };

/** The console's page, assets and JSON API over HTTP, as the browser calls them (the orchestrator process, in-memory backends). */
describe('web console: page, assets and JSON API over HTTP', function () {
  this.timeout(60_000);
  let stack: Stack;
  let base = '';
  /** How long the call that ran api-failed took, as the test saw it: no attempt inside it can be longer. */
  let failedCallMs = 0;
  const PAYMENT_DELAY_MS = 100;

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { headers });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const getJson = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: (await res.json()) as Body };
  };
  const post = async (path: string, body: unknown = {}, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Body };
  };

  before(async () => {
    stack = await Stack.start({ transport: 'memory', transfer: {} });
    base = `http://127.0.0.1:${stack.ports.http}`;
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'api-done' });
    // The payment waits PAYMENT_DELAY_MS before it refuses: its attempt has a duration to measure.
    const began = Date.now();
    await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true, DelayMs: PAYMENT_DELAY_MS }, { 'x-request-id': 'api-failed' }));
    failedCallMs = Date.now() - began;
    await stack.sagaReaches('api-failed', 'COMPENSATED');
    await stack.startSaga(TRANSFER, { from: 'alice', to: 'bob', amount: 5, webhookTimeoutMs: 600_000 }, 'api-waiting');
    await waitFor(async () => (await stack.saga('api-waiting')).steps.some((s) => s.name === 'webhook' && s.status === 'STEP_WAITING'), 20_000, 'the transfer to wait');
  });
  after(() => stack?.stop());

  it('serves the page at / and its scripts, and mermaid from node_modules, gzipped with an ETag', async () => {
    const page = await get('/');
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(page.text).to.contain('<script type="module" src="/console/app.js">').and.to.contain('/console/vendor/mermaid.min.js');
    const app = await get('/console/pages/saga.js');
    expect(app.status).to.equal(200);
    expect(app.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    const mermaid = await get('/console/vendor/mermaid.min.js', { 'accept-encoding': 'gzip' });
    expect(mermaid.status).to.equal(200);
    expect(mermaid.headers.get('content-encoding')).to.equal('gzip');
    expect(mermaid.text).to.contain('globalThis["mermaid"]');
    const again = await get('/console/vendor/mermaid.min.js', { 'if-none-match': mermaid.headers.get('etag')! });
    expect(again.status).to.equal(304);
    for (const missing of ['/console/nope.js', '/console/vendor/nope.js', '/console/%2e%2e/package.json', '/console/style.css.map']) {
      expect((await get(missing)).status, missing).to.equal(404);
    }
  });

  it('lists sagas newest first, filtered by facade and status, a page at a time', async () => {
    const all = await getJson(`/api/sagas?facade=${SYNC_BOOKING}`);
    expect(all.status).to.equal(200);
    const sagas = all.body.sagas as { requestId: string; status: string; history?: unknown }[];
    expect(sagas.map((s) => [s.requestId, s.status])).to.deep.equal([['api-failed', 'COMPENSATED'], ['api-done', 'COMPLETED']]);
    expect(sagas[0]).not.to.have.property('history');
    expect(((await getJson('/api/sagas?status=RUNNING')).body.sagas as { requestId: string }[]).map((s) => s.requestId)).to.deep.equal(['api-waiting']);
    const first = await getJson(`/api/sagas?facade=${SYNC_BOOKING}&page_size=1`);
    expect((first.body.sagas as { requestId: string }[]).map((s) => s.requestId)).to.deep.equal(['api-failed']);
    const second = await getJson(`/api/sagas?facade=${SYNC_BOOKING}&page_size=1&page_token=${String(first.body.nextPageToken)}`);
    expect((second.body.sagas as { requestId: string }[]).map((s) => s.requestId)).to.deep.equal(['api-done']);
    expect(second.body).not.to.have.property('nextPageToken');
    const future = await getJson(`/api/sagas?created_from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.body.sagas).to.deep.equal([]);
  });

  it('answers bad list input with 400 naming the field', async () => {
    for (const [query, field] of [['status=FAILED', 'status'], ['page_size=0', 'page_size'], ['created_from=soon', 'created_from'], ['page_token=garbage', 'page_token']]) {
      const res = await getJson(`/api/sagas?${query}`);
      expect(res.status, query).to.equal(400);
      expect(res.body, query).to.include({ code: 'INVALID_ARGUMENT', field });
      expect(res.body.error, query).to.match(new RegExp(`^${field}: `));
    }
  });

  it('one saga: the snapshot, its graph with the path taken, and the timeline with durations; 404 for an unknown one', async () => {
    const { status, body } = await getJson('/api/sagas/api-failed');
    expect(status).to.equal(200);
    const saga = body.saga as { status: string; input: unknown; error: string };
    expect(saga.status).to.equal('COMPENSATED');
    expect(saga.input).to.deep.include({ productId: 1, faultInject: true, delayMs: PAYMENT_DELAY_MS });
    expect(saga.error).to.contain('createPayment');
    const graph = body.graph as { mermaid: string; nodes: { name: string }[] };
    expect(graph.nodes.map((n) => n.name)).to.deep.equal(['createOrder', 'createPayment']);
    expect(graph.mermaid).to.contain('class n0 compensated').and.to.contain('class n1 failed');
    const timeline = body.timeline as { type: string; step?: string; measured?: string; durationMs?: number }[];
    const failed = timeline.find((e) => e.type === 'STEP_FAILED')!;
    expect(failed).to.include({ step: 'createPayment', measured: 'attempt' });
    expect(failed.durationMs).to.be.a('number').and.within(PAYMENT_DELAY_MS, failedCallMs);
    const missing = await getJson('/api/sagas/no-such-saga');
    expect(missing).to.deep.equal({ status: 404, body: { error: 'saga no-such-saga not found: finished sagas are deleted after saga.retentionMs (7d, unless its facade sets its own)', code: 'NOT_FOUND' } });
  });

  it('actions on a finished saga are refused with 409; a wrong method with 405', async () => {
    const cancel = await post('/api/sagas/api-done/cancel');
    expect(cancel.status).to.equal(409);
    expect(cancel.body).to.include({ code: 'FAILED_PRECONDITION', error: 'saga api-done is already COMPLETED' });
    const retry = await post('/api/sagas/api-done/retry-compensation');
    expect(retry.status).to.equal(409);
    expect(retry.body.error).to.equal('saga api-done is COMPLETED, not COMPENSATION_FAILED');
    expect((await fetch(`${base}/api/sagas/api-done/cancel`)).status).to.equal(405);
  });

  it('refuses actions that a page of another origin could send (no JSON content type, a foreign Origin): the saga is untouched', async () => {
    const form = await post('/api/sagas/api-waiting/cancel', {}, { 'content-type': 'text/plain' });
    expect(form.status).to.equal(415);
    expect(form.body.error).to.equal('content-type: must be application/json');
    const foreign = await post('/api/sagas/api-waiting/cancel', {}, { 'content-type': 'application/json', origin: 'http://elsewhere.example' });
    expect(foreign.status).to.equal(403);
    expect(foreign.body.error).to.match(/^origin: http:\/\/elsewhere\.example is not this console/);
    expect((await stack.saga('api-waiting')).status).to.equal('RUNNING');
  });

  it('refuses an event payload holding \\u0000 or over limits.maxPayloadBytes: 400 naming the field, nothing recorded', async () => {
    const nul = await post('/api/sagas/api-waiting/events', { event: WEBHOOK_EVENT, payload: { status: 'a\u0000' } });
    expect(nul.status).to.equal(400);
    expect(nul.body).to.include({ code: 'INVALID_ARGUMENT', field: 'payload.status' });
    const big = await post('/api/sagas/api-waiting/events', { event: WEBHOOK_EVENT, payload: { pad: 'x'.repeat(300 * 1024) } });
    expect(big.status).to.equal(400);
    expect(big.body).to.include({ code: 'INVALID_ARGUMENT', field: 'payload' });
    expect((await stack.saga('api-waiting')).status).to.equal('RUNNING');
  });

  it('sends an event: bad fields are 400 naming them, the webhook completes the transfer; the facades count it', async () => {
    const bad = await post('/api/sagas/api-waiting/events', { event: WEBHOOK_EVENT, payload: 'CONFIRMED' });
    expect(bad).to.deep.equal({ status: 400, body: { error: 'payload: must be a JSON object', code: 'INVALID_ARGUMENT', field: 'payload' } });
    const unknown = await post('/api/sagas/api-waiting/events', { event: 'refund' });
    expect(unknown.status).to.equal(400);
    expect(unknown.body).to.include({ field: 'event' });
    const notJson = await fetch(`${base}/api/sagas/api-waiting/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"event":' });
    expect(notJson.status).to.equal(400);
    const sent = await post('/api/sagas/api-waiting/events', { event: WEBHOOK_EVENT, payload: { status: 'CONFIRMED' }, idempotency_key: 'api-waiting:hook' });
    expect(sent.status).to.equal(200);
    expect((sent.body.saga as { requestId: string }).requestId).to.equal('api-waiting');
    await stack.sagaReaches('api-waiting', 'COMPLETED', 20_000);

    const { body } = await getJson('/api/facades');
    const facades = body.facades as { name: string; version: number; mermaid: string; runningSagas: number; counts: Record<string, number> }[];
    const booking = facades.find((f) => f.name === SYNC_BOOKING)!;
    expect(booking.counts).to.deep.equal({ RUNNING: 0, COMPLETED: 1, COMPENSATING: 0, COMPENSATED: 1, COMPENSATION_FAILED: 0 });
    expect(booking.mermaid).to.match(/^flowchart LR/);
    expect(facades.find((f) => f.name === TRANSFER)!.counts).to.include({ COMPLETED: 1, RUNNING: 0 });
    const names = (await getJson('/api/facades?counts=false')).body.facades as Record<string, unknown>[];
    expect(names.map((f) => f.name)).to.deep.equal(facades.map((f) => f.name));
    expect(names[0]).not.to.have.property('counts');
  });
});
