import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { call, Proc, Stack } from '../helpers/stack';
import { spansOf } from '../helpers/otlp';
import { waitFor } from '../helpers/wait';

/** An OTLP/HTTP collector stand-in: keeps the body of every export to /v1/traces. */
async function collector(): Promise<{ server: Server; port: number; bodies: Buffer[] }> {
  const bodies: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') bodies.push(Buffer.concat(chunks));
      // An empty ExportTraceServiceResponse: zero bytes of protobuf.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, bodies };
}

/** The orchestrator with tracing configured the standard way (OTEL_* variables), exporting to a collector. */
describe('traces exported over OTLP (spawned orchestrator, OTEL_* environment)', function () {
  this.timeout(60_000);
  let stack: Stack;
  let otlp: Awaited<ReturnType<typeof collector>>;
  before(async () => {
    otlp = await collector();
    stack = await Stack.start({
      transport: 'memory',
      orchestratorEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp.port}`, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'och-e2e' },
    });
  });
  after(async () => {
    await stack?.stop();
    otlp?.server.close();
  });

  it('a sync booking called with a traceparent: the call, the saga and its steps are exported in the caller\'s trace', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    await call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'otlp-1', traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(stack.orchestrator.logs().some((l) => l.message === 'tracing on')).to.equal(true);
    // The call's span, the saga's, its steps' and their upstream calls', decoded from the export bodies.
    const names = ['pb.BookingService/HandleSyncBooking', 'saga SyncBooking', 'step createOrder', 'CreateOrder', 'step createPayment', 'CreatePayment'];
    const spans = await waitFor(() => {
      const all = spansOf(otlp.bodies);
      return names.every((name) => all.some((sp) => sp.name === name)) ? all : undefined;
    }, 10_000, `the spans ${names.join(', ')} at the collector`);
    const traceOf = (name: string) => spans.filter((sp) => sp.name === name).map((sp) => `${sp.service} ${sp.traceId}`);
    for (const name of names) expect(traceOf(name), name).to.deep.equal([`och-e2e ${traceId}`]);
    // The server's span is the caller's span's child; every span naming the saga is in its trace.
    expect(spans.find((sp) => sp.name === names[0])!.parentSpanId).to.equal(callerSpan);
    const ofSaga = spans.filter((sp) => sp.attributes['saga.request_id'] === 'otlp-1');
    expect(ofSaga.map((sp) => sp.name)).to.include.members(names.slice(1));
    expect(ofSaga.filter((sp) => sp.traceId !== traceId).map((sp) => `${sp.name} ${sp.traceId}`), 'spans of otlp-1 in another trace').to.deep.equal([]);
  });

  it('a bad OTEL_TRACES_EXPORTER stops the start with an error naming it (exit 78)', async () => {
    const proc = new Proc(['dist/src/main.js'], { OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(await proc.exited).to.equal(78);
    expect(proc.lines.join('\n')).to.contain('OTEL_TRACES_EXPORTER: unknown exporter "zipkin" (one of otlp, console, none)');
  });
});
