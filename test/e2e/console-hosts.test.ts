import { expect } from 'chai';
import { TRANSFER } from '../../src/examples/transfer/facade';
import { httpRequest, rawHttp } from '../helpers/http';
import { Stack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

/**
 * DNS rebinding: a page at http://evil.example:PORT whose name its owner re-points to 127.0.0.1
 * is same-origin with the console as far as the browser knows, so CORS and an Origin-equals-Host
 * check let it read and steer sagas. Only the Host header tells it apart: the console answers
 * hosts it is configured for (http.host, loopback names, http.allowedHosts), and the probes and
 * /metrics answer any host (kubelet and Prometheus send the pod's IP, which no config can list).
 */
describe('web console: the Host and Origin a request may come with (DNS rebinding)', function () {
  this.timeout(60_000);
  let stack: Stack;
  let port = 0;
  const LISTED = 'console.example.org';

  const request = (host: string, path: string, opts: { method?: string; origin?: string } = {}) => httpRequest(port, {
    method: opts.method ?? 'GET',
    path,
    headers: { host, ...(opts.origin ? { origin: opts.origin } : {}), ...(opts.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    body: opts.method === 'POST' ? '{}' : undefined,
  });
  const waiting = async (id: string) => {
    await stack.startSaga(TRANSFER, { from: 'alice', to: 'bob', amount: 5, webhookTimeoutMs: 600_000 }, id);
    await waitFor(async () => (await stack.saga(id)).steps.some((s) => s.name === 'webhook' && s.status === 'STEP_WAITING'), 20_000, `${id} to wait for its webhook`);
  };

  before(async () => {
    stack = await Stack.start({ transport: 'memory', transfer: {}, orchestratorEnv: { OCH_HTTP_ALLOWED_HOSTS: LISTED } });
    port = stack.ports.http;
    await Promise.all([waiting('rebound'), waiting('same-origin')]);
  });
  after(() => stack?.stop());

  it('a rebound page\'s cancel (Host and Origin evil.example) is refused with 421 and the saga runs on', async () => {
    const evil = `evil.example:${port}`;
    const cancel = await request(evil, '/api/sagas/rebound/cancel', { method: 'POST', origin: `http://${evil}` });
    expect(cancel.status, cancel.text.slice(0, 300)).to.equal(421);
    expect(JSON.parse(cancel.text)).to.include({ code: 'HTTP' }).and.to.have.property('error').that.matches(/^host: evil\.example:\d+ is not/);
    expect((await stack.saga('rebound')).status).to.equal('RUNNING');
  });

  it('reads too: the page, its scripts and the API answer 421 to a host they are not configured for', async () => {
    for (const path of ['/', '/console/app.js', '/api/sagas', '/api/sagas/rebound', '/api/facades']) {
      for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`]) {
        expect((await request(host, path)).status, `${host} ${path}`).to.equal(421);
      }
    }
    // node:http would put its own Host in place of an empty one: written by hand.
    expect((await rawHttp(port, 'GET /api/sagas HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n')).status, 'an empty Host').to.equal(421);
  });

  it('the probes and /metrics answer any host: kubelet and Prometheus use the pod IP, or a Service name', async () => {
    for (const host of [`10.1.2.3:${port}`, `orchestrator.monitoring.svc:${port}`, `evil.example:${port}`]) {
      for (const path of ['/healthz', '/readyz', '/metrics']) expect((await request(host, path)).status, `${host} ${path}`).to.equal(200);
    }
  });

  it('same-origin from each loopback name and from a listed host: reads work; a cancel works; another origin is 403', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`, `${LISTED}:${port}`, LISTED]) {
      const page = await request(host, '/');
      expect(page.status, `${host} /`).to.equal(200);
      expect(page.text).to.contain('<script type="module" src="/console/app.js">');
      expect((await request(host, '/api/sagas/same-origin')).status, `${host} /api/sagas/same-origin`).to.equal(200);
    }
    const host = `localhost:${port}`;
    // Another page of this machine (another port, another loopback name): not the console's origin.
    for (const origin of ['http://localhost:3000', `http://127.0.0.1:${port}`, `http://evil.example:${port}`, 'null']) {
      const refused = await request(host, '/api/sagas/same-origin/cancel', { method: 'POST', origin });
      expect(refused.status, `Origin ${origin}`).to.equal(403);
    }
    expect((await stack.saga('same-origin')).status).to.equal('RUNNING');
    const cancelled = await request(host, '/api/sagas/same-origin/cancel', { method: 'POST', origin: `http://${host}` });
    expect(cancelled.status, cancelled.text).to.equal(200);
    await stack.sagaReaches('same-origin', 'COMPENSATED', 20_000);
  });
});
