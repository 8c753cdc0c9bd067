import { expect } from 'chai';
import { httpGet } from '../helpers/http';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { ThrowawayPostgres } from '../helpers/postgres';
import { call, Stack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

describe('HTTP probes (/healthz, /readyz) for Kubernetes', function () {
  this.timeout(120_000);

  it('on Kafka + Postgres: live and ready; not ready while Postgres is down (naming the store), ready again once it is back', async () => {
    const pg = new ThrowawayPostgres();
    await pg.start();
    let stack: Stack | undefined;
    try {
      stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: pg.dsn });
      const port = stack.ports.http;
      expect(await httpGet(port, '/healthz')).to.deep.equal({ status: 200, body: { status: 'ok' } });
      expect(await httpGet(port, '/readyz')).to.deep.equal({ status: 200, body: { status: 'ready' } });
      await pg.stop();
      const down = await waitFor(async () => { const r = await httpGet(port, '/readyz'); return r.status === 503 ? r : undefined; }, 30_000, 'not ready');
      expect(down.body).to.include({ status: 'not ready', reason: 'unreachable' }).and.to.have.property('store').that.is.a('string');
      expect(down.body).not.to.have.property('transport');
      expect((await httpGet(port, '/healthz')).status, 'still live').to.equal(200);
      await pg.start();
      await waitFor(async () => (await httpGet(port, '/readyz')).status === 200, 30_000, 'ready again');
      expect((await httpGet(port, '/nowhere')).status).to.equal(404);
    } finally {
      await stack?.stop();
      await pg.destroy();
    }
  });

  it('while draining after SIGTERM, /readyz answers 503 "draining" as in-flight calls finish', async () => {
    const stack = await Stack.start({ transport: 'memory' });
    try {
      const port = stack.ports.http;
      expect((await httpGet(port, '/readyz')).status).to.equal(200);
      const slow = call(stack.booking, 'HandleSyncBooking', { ProductID: 1, DelayMs: 1500 }, { 'x-request-id': 'drain-probe' });
      await waitFor(() => stack.orchestrator.logs().some((l) => l.requestId === 'drain-probe' && l.message === 'step succeeded'), 10_000, 'the slow call in flight');
      stack.orchestrator.kill('SIGTERM');
      const draining = await waitFor(async () => { const r = await httpGet(port, '/readyz'); return r.status === 503 ? r : undefined; }, 10_000, 'not ready');
      expect(draining.body).to.deep.equal({ status: 'not ready', reason: 'draining' });
      await slow;
      expect(await stack.orchestrator.exited).to.equal(0);
    } finally {
      await stack.stop();
    }
  });
});
