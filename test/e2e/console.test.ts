import { expect } from 'chai';
import type { Locator, Page, Request } from 'playwright-core';
import { SYNC_BOOKING } from '../../src/examples/booking/facades';
import { TRANSFER } from '../../src/examples/transfer/facade';
import type { TransferInput } from '../../src/examples/transfer/input';
import { WEBHOOK_EVENT } from '../../src/examples/transfer/nodes';
import { launchBrowser } from '../helpers/browser';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { SHIPPED, SHIPPED_CONSOLE } from '../helpers/shipped';
import { call, Stack, waitServing } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

/**
 * The web console in a real browser (Debian's chromium, headless) against the orchestrator on
 * Kafka + Postgres: a completed, a compensated and a waiting saga found in the list, the
 * compensated one's graph, and the waiting one cancelled from its page. Screenshots go to
 * .test-results/screenshots/console-*.png. The page is opened where `make run` serves it (the
 * shipped app.yaml's http.host and http.port), with no browser flag: a port the browser refuses
 * (ERR_UNSAFE_PORT, as 10080 was) fails here.
 */
describe('web console in a headless browser (Kafka + Postgres)', function () {
  this.timeout(180_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let page: Page;
  let base = '';

  before(async () => {
    db = await freshDatabase();
    stack = await Stack.start({
      transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, transfer: {},
      // As in lifecycle.test.ts: compensation outlasts the upstream channel's reconnect backoff, so a retry reaches a restarted service.
      compensation: '{ maxAttempts: 4, initialBackoffMs: 400, jitter: 0 }',
      httpPort: SHIPPED.http.port,
    });
    base = SHIPPED_CONSOLE;
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'ui-done' });
    const aborted = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1, FaultInject: true }, { 'x-request-id': 'ui-compensated' }));
    expect(aborted.message).to.contain('createPayment');
    await stack.sagaReaches('ui-compensated', 'COMPENSATED', 30_000);
    const transfer: TransferInput = { from: 'alice', to: 'bob', amount: 700, webhookTimeoutMs: 600_000 };
    for (const id of ['ui-waiting', 'ui-event']) {
      await stack.startSaga(TRANSFER, transfer, id);
      await waitFor(async () => (await stack!.saga(id)).steps.some((s) => s.name === 'webhook' && s.status === 'STEP_WAITING'), 60_000, `transfer ${id} to wait for its webhook`);
    }
    browser = await launchBrowser();
    page = browser.page;
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
    await db?.drop();
  });

  /** A fresh document each time: a hash change alone would keep the previous page's state (an open dialog, timers). */
  const open = async (hash: string) => {
    await page.goto('about:blank');
    await page.goto(`${base}/#${hash}`);
  };
  const row = (id: string) => page.locator(`#sagas tbody tr[data-request-id="${id}"]`);

  it('lists the completed, compensated and waiting sagas with their status, and filters by status', async () => {
    await open('/sagas');
    await row('ui-waiting').waitFor();
    expect(await row('ui-done').getAttribute('data-status')).to.equal('COMPLETED');
    expect(await row('ui-compensated').getAttribute('data-status')).to.equal('COMPENSATED');
    expect(await row('ui-waiting').getAttribute('data-status')).to.equal('RUNNING');
    expect(await row('ui-waiting').locator('td').nth(1).textContent()).to.equal(TRANSFER);
    await browser!.screenshot('console-sagas');
    // Refreshed live: a saga started while the page is open shows up without a reload.
    await call(stack!.booking, 'HandleSyncBooking', { ProductID: 2 }, { 'x-request-id': 'ui-live' });
    // A refresh may have caught it still RUNNING (the sync answer can come before the final write is listed): the next one shows it done.
    await page.locator('#sagas tbody tr[data-request-id="ui-live"][data-status=COMPLETED]').waitFor();

    await page.selectOption('#filter-status', 'COMPENSATED');
    await page.click('#filters button[type=submit]');
    await page.waitForURL(/#\/sagas\?status=COMPENSATED$/);
    await row('ui-done').waitFor({ state: 'detached' });
    // The old rows go before the new ones come: wait for the filtered list itself.
    await row('ui-compensated').waitFor();
    const statuses = await attributes(page.locator('#sagas tbody tr'), 'data-status');
    expect(statuses).to.deep.equal(['COMPENSATED']);
    await page.selectOption('#filter-facade', SYNC_BOOKING);
    await page.selectOption('#filter-status', '');
    await page.click('#filters button[type=submit]');
    await row('ui-done').waitFor();
    expect(await row('ui-waiting').count(), 'the Transfer is filtered out').to.equal(0);
  });

  it('pages through the list, older and back to newer', async () => {
    await open(`/sagas?facade=${SYNC_BOOKING}&page_size=2`);
    const ids = async () => attributes(page.locator('#sagas tbody tr'), 'data-request-id');
    await row('ui-live').waitFor();
    expect(await ids()).to.deep.equal(['ui-live', 'ui-compensated']);
    await page.click('text=Older ›');
    await row('ui-done').waitFor();
    expect(await ids()).to.deep.equal(['ui-done']);
    expect(await page.isDisabled('text=Older ›'), 'the last page').to.equal(true);
    await page.click('text=‹ Newer');
    await row('ui-live').waitFor();
    expect(await ids()).to.deep.equal(['ui-live', 'ui-compensated']);
    expect(await page.isDisabled('text=‹ Newer'), 'the first page').to.equal(true);
  });

  it('filters by created time: nothing was created after a time in the future, everything before it', async () => {
    await open('/sagas');
    await row('ui-done').waitFor();
    await page.fill('#filter-from', '2099-01-01T00:00:00');
    await page.click('#filters button[type=submit]');
    await page.locator('#sagas tbody td', { hasText: 'No saga matches.' }).waitFor();
    expect(decodeURIComponent(new URL(page.url()).hash)).to.match(/created_from=2099-01-01T/);
    await page.fill('#filter-from', '');
    await page.fill('#filter-to', '2099-01-01T00:00:00');
    await page.click('#filters button[type=submit]');
    await row('ui-done').waitFor();
    expect(await page.locator('#sagas tbody tr').count()).to.equal(5);
  });

  it('the compensated saga: its graph marks createPayment failed and createOrder compensated; its error and timeline', async () => {
    await open('/sagas');
    await row('ui-compensated').locator('a').click();
    await page.waitForURL(/#\/sagas\/ui-compensated$/);
    await page.locator('#graph svg').waitFor();
    const nodesOf = (cls: string) => page.locator(`#graph svg g.node.${cls}`).allTextContents();
    expect((await nodesOf('failed')).map((t) => t.trim())).to.deep.equal(['createPayment']);
    expect((await nodesOf('compensated')).map((t) => t.trim())).to.deep.equal(['createOrder']);
    expect(await nodesOf('current')).to.deep.equal([]);
    expect(await page.locator('#saga-head .badge').textContent()).to.equal('COMPENSATED');
    expect(await page.locator('#saga-error').textContent()).to.contain('createPayment');
    const timeline = await attributes(page.locator('#timeline tbody tr'), 'data-type');
    expect(timeline).to.include.members(['SAGA_STARTED', 'STEP_SUCCEEDED', 'STEP_FAILED', 'COMPENSATION_SUCCEEDED']);
    // The payment's attempt, timed from its start to its failure.
    expect(await page.locator('#timeline tbody tr[data-type=STEP_FAILED] td.duration').textContent()).to.match(/^attempt \d+(\.\d+)? m?s$/);
    expect(await page.locator('#actions').textContent()).to.contain('No action');
    await browser!.screenshot('console-saga-compensated');
  });

  it('the waiting transfer: shows what it waits for, and cancelling it from the page (confirmed) compensates it', async () => {
    await open('/sagas/ui-waiting');
    await page.locator('#graph svg g.node.current').waitFor();
    expect((await page.locator('#graph svg g.node.current').allTextContents()).join()).to.contain('webhook');
    expect(await page.locator('#waiting tr[data-node=webhook]').textContent()).to.contain(WEBHOOK_EVENT);

    await page.click('#action-cancel');
    await page.locator('#confirm[open]').waitFor();
    expect(await page.locator('#confirm-title').textContent()).to.equal('Cancel saga ui-waiting?');
    await browser!.screenshot('console-cancel-confirm');
    expect((await stack!.saga('ui-waiting')).status, 'nothing happens before the confirmation').to.equal('RUNNING');
    await page.click('#confirm-yes');
    await page.locator('main[data-status=COMPENSATED]').waitFor({ timeout: 60_000 });
    // The debit is refunded; the gateway's charge has no compensation; the wait is where it was cancelled.
    expect((await page.locator('#graph svg g.node.compensated').allTextContents()).map((t) => t.trim())).to.deep.equal(['debit']);
    expect((await page.locator('#graph svg g.node.failed').allTextContents()).join()).to.contain('webhook');
    const saga = await stack!.saga('ui-waiting');
    expect(saga.status).to.equal('COMPENSATED');
    expect(saga.error_code).to.equal('CANCELLED');
    await browser!.screenshot('console-saga-cancelled');
  });

  it('sends an event from the page: a payload that is not an object is refused in the dialog, the webhook CONFIRMED completes the transfer', async () => {
    await open('/sagas/ui-event');
    // The engine drops a repeated idempotency key, so its history cannot tell one POST from two: count what the page sent.
    const posts: { url: string; key: unknown }[] = [];
    const onRequest = (r: Request) => {
      if (r.method() === 'POST') posts.push({ url: new URL(r.url()).pathname, key: (r.postDataJSON() as { idempotency_key?: unknown }).idempotency_key });
    };
    page.on('request', onRequest);
    await page.click('#action-event');
    await page.locator('#confirm[open]').waitFor();
    expect(await page.inputValue('#event-name'), 'the event the saga waits for').to.equal(WEBHOOK_EVENT);
    await page.fill('#event-payload', '["CONFIRMED"]');
    await page.click('#confirm-yes');
    // The refusal comes back from the server: wait for it to be shown.
    await page.locator('#confirm-error:not([hidden])').waitFor();
    expect(await page.locator('#confirm-error').textContent()).to.equal('payload: must be a JSON object');
    expect(await page.locator('#confirm').getAttribute('open'), 'the dialog stays open').to.equal('');
    await page.fill('#event-payload', '{"status": "CONFIRMED"}');
    await page.click('#confirm-yes');
    await page.locator('main[data-status=COMPLETED]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#output').textContent()).to.contain('creditId');
    page.off('request', onRequest);
    // Sent once per click (the refused payload, then the good one), both under the dialog's own idempotency key.
    expect(posts.map((p) => p.url)).to.deep.equal(['/api/sagas/ui-event/events', '/api/sagas/ui-event/events']);
    expect(posts[0].key).to.be.a('string').and.match(/^console:[0-9a-f]{24}$/);
    expect(posts[1].key).to.equal(posts[0].key);
    const received = await page.locator('#timeline tbody tr[data-type=EVENT_RECEIVED] td.detail').allTextContents();
    expect(received).to.have.length(1);
    expect(received[0]).to.contain(`"idempotencyKey":"${String(posts[0].key)}"`);
    expect((await stack!.saga('ui-event')).status).to.equal('COMPLETED');
    await browser!.screenshot('console-saga-event');
  });

  it('the facades page: every facade with its graph and its sagas counted by status', async () => {
    await open('/facades');
    const card = page.locator(`#facades section[data-facade="${SYNC_BOOKING}"]`);
    await card.locator('svg').waitFor();
    expect(await card.locator('td[data-status=COMPLETED] .count').textContent(), 'ui-done and ui-live').to.equal('2');
    expect(await card.locator('td[data-status=COMPENSATED] .count').textContent()).to.equal('1');
    expect(await page.locator(`#facades section[data-facade="${TRANSFER}"] td[data-status=COMPENSATED] .count`).textContent()).to.equal('1');
    await browser!.screenshot('console-facades');
  });

  it('retries a failed compensation from the page once the payment service is back', async () => {
    const payment = stack!.procs[1];
    payment.kill('SIGTERM');
    await payment.exited;
    await rejectionOf(call(stack!.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'ui-stuck' }));
    await stack!.sagaReaches('ui-stuck', 'COMPENSATION_FAILED', 60_000);
    await open('/sagas/ui-stuck');
    await page.locator('#action-retry').waitFor();
    expect((await page.locator('#graph svg g.node.failed').allTextContents()).map((t) => t.trim())).to.deep.equal(['createPayment']);
    await waitServing(`127.0.0.1:${stack!.ports.payment}`, stack!.spawn(['dist/src/examples/booking/services/main.js', 'payment', `127.0.0.1:${stack!.ports.payment}`]));
    await page.click('#action-retry');
    await page.locator('#confirm[open]').waitFor();
    await page.click('#confirm-yes');
    await page.locator('main[data-status=COMPENSATED]').waitFor({ timeout: 60_000 });
    expect((await stack!.saga('ui-stuck')).status).to.equal('COMPENSATED');
    expect((await call<{ status: string }>(stack!.orders, 'GetOrder', { request_id: 'ui-stuck' })).response.status).to.equal('CANCELLED');
  });
});

async function attributes(locator: Locator, name: string): Promise<(string | null)[]> {
  return Promise.all((await locator.all()).map((l) => l.getAttribute(name)));
}
