import * as grpc from '@grpc/grpc-js';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { expect } from 'chai';
import { StepError } from '../../src/engine/errors';
import type { FacadeDefinition, NodeDefinition, StepDefinition } from '../../src/engine/facade';
import { sequence } from '../../src/engine/graph';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaStore } from '../../src/engine/store';
import type { Transport } from '../../src/engine/transport';
import { callUpstream } from '../../src/grpc/call';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import type { TopicSpec } from '../../topics/topics';
import { ended } from '../helpers/instances';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { MemoryTracing, only, parentOf, treeOf } from '../helpers/tracing';
import { waitFor } from '../helpers/wait';

const TOPICS: TopicSpec[] = ['tr.a', 'tr.b', 'tr.c', 'tr.rb', 'outcomes'].map((name) => ({ name, partitions: 2, deadLetter: 'dlq' }));
TOPICS.push({ name: 'dlq', partitions: 1 });

type In = { fail?: boolean };

/** An upstream that keeps the metadata of every call: what a service behind a step would see. */
async function echoServer(): Promise<{ address: string; seen: grpc.Metadata[]; client: grpc.Client; close: () => void }> {
  const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
  const service: grpc.ServiceDefinition = {
    Echo: {
      path: '/test.Echo/Echo', requestStream: false, responseStream: false,
      requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
    },
  };
  const seen: grpc.Metadata[] = [];
  const server = new grpc.Server();
  server.addService(service, { Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => { seen.push(call.metadata); cb(null, { ok: true }); } });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(address, grpc.credentials.createInsecure());
  return { address, seen, client, close: () => { client.close(); server.forceShutdown(); } };
}

/** a → b (calls the upstream) → c; `fail` makes c fail for good, and c, b then a are compensated. */
function traced(upstream: grpc.Client): FacadeDefinition<In, unknown> {
  const step = (name: string, run: StepDefinition<In>['run']): StepDefinition<In> => ({
    name, topic: `tr.${name}`, retry: { maxAttempts: 1 }, run, compensate: async () => undefined,
  });
  return {
    name: 'Traced', version: 1, mode: 'async', rollbackTopic: 'tr.rb', parseInput: (raw) => (raw ?? {}), result: () => ({}),
    nodes: sequence(
      step('a', async () => ({ a: 1 })),
      step('b', (ctx) => callUpstream(upstream, 'Echo', {}, { requestId: ctx.requestId, idempotencyKey: ctx.idempotencyKey })),
      step('c', async (ctx) => {
        if (ctx.input.fail) throw new StepError('FAILED_PRECONDITION', 'c refused', false);
        return { c: 1 };
      }),
    ),
  };
}

/** a → a durable sleep → b: a saga parked in the store, that another instance can take over. */
function napper(ran: string[]): FacadeDefinition<In, unknown> {
  const step = (name: string, topic: string, after?: string[]): StepDefinition<In> => ({
    name, topic, after, retry: { maxAttempts: 1 }, run: async () => { ran.push(name); return { name }; },
  });
  const nodes: NodeDefinition<In>[] = [step('a', 'tr.a'), { kind: 'sleep', name: 'nap', after: ['a'], delayMs: 1_500 }, step('b', 'tr.b', ['nap'])];
  return { name: 'Napper', version: 1, mode: 'async', rollbackTopic: 'tr.rb', parseInput: (raw) => (raw ?? {}), result: () => ({}), nodes };
}

/** a → a wait for `go` → b: the event, sent by another call, moves the saga on in its own trace. */
function waiter(): FacadeDefinition<In, unknown> {
  const step = (name: string, topic: string, after?: string[]): StepDefinition<In> => ({ name, topic, after, retry: { maxAttempts: 1 }, run: async () => ({ name }) });
  const nodes: NodeDefinition<In>[] = [step('a', 'tr.a'), { kind: 'wait', name: 'go', after: ['a'], events: ['go'] }, step('b', 'tr.b', ['go'])];
  return { name: 'Waiter', version: 1, mode: 'async', rollbackTopic: 'tr.rb', parseInput: (raw) => (raw ?? {}), result: () => ({}), nodes };
}

/** Keeps the metadata of each log line: the trace id must be on the saga's lines. */
function recordingLogger(lines: Record<string, unknown>[], meta: Record<string, unknown> = {}): Logger {
  const line = (message: string, m?: Record<string, unknown>) => { lines.push({ message, ...meta, ...m }); };
  return { debug: line, info: line, warn: line, error: line, child: (more) => recordingLogger(lines, { ...meta, ...more }) };
}

describe('traces (OpenTelemetry, in-memory exporter): one trace per saga across Kafka hops, upstream calls and instances', function () {
  this.timeout(120_000);
  const tracing = new MemoryTracing();
  const cleanups: (() => Promise<void> | void)[] = [];
  let store: SagaStore;
  let dsn: string;

  before(async () => {
    tracing.install();
    const db = await freshDatabase();
    dsn = db.dsn;
    cleanups.push(() => db.drop());
    store = await PostgresSagaStore.create({ dsn, poolSize: 5, leaseTtlMs: 2_000, connectTimeoutMs: 2_000 }, silentLogger);
    cleanups.push(() => store.close());
  });
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    await tracing.uninstall();
  });

  const orchestratorOn = async (s: SagaStore, transport: Transport, defs: FacadeDefinition<In, unknown>[], podId: string, logger: Logger = silentLogger) => {
    const registry = new FacadeRegistry();
    for (const d of defs) registry.register(d);
    const orchestrator = new Orchestrator({
      registry, store: s, transport, logger, podId, outcomeTopic: 'outcomes',
      options: { recoveryIntervalMs: 50, timerPollMs: 20, heartbeatMs: 100, stepTimeoutMs: 5_000 },
    });
    await orchestrator.start();
    return orchestrator;
  };

  describe('on Kafka', () => {
    let orchestrator: Orchestrator;
    let upstream: Awaited<ReturnType<typeof echoServer>>;
    const lines: Record<string, unknown>[] = [];

    before(async () => {
      upstream = await echoServer();
      cleanups.push(() => upstream.close());
      const transport = await KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: 'traces', partitionsConsumedConcurrently: 4, connectTimeoutMs: 20_000, ...uniqueKafkaNames() }, TOPICS, silentLogger);
      orchestrator = await orchestratorOn(store, transport, [traced(upstream.client)], 'kafka-1', recordingLogger(lines));
      cleanups.push(async () => { await orchestrator.shutdown(); await transport.close(); });
    });

    /** The saga's whole trace, once `count` spans of it have ended (the last ones end after the saga does). */
    const traceOf = async (requestId: string, count: number) => {
      const root = await waitFor(() => tracing.spans().find((s) => s.name === 'saga Traced' && s.attributes['saga.request_id'] === requestId), 10_000, `the root span of ${requestId}`);
      const traceId = root.spanContext().traceId;
      return { root, traceId, spans: await waitFor(() => { const t = tracing.trace(traceId); return t.length >= count && t; }, 20_000, `${count} spans of ${requestId}`) };
    };

    it('an async saga: the call that started it is the root, each step is a child of the step that sent its message, the upstream call carries traceparent', async () => {
      await orchestrator.startAsync('Traced', 'tr-ok', {});
      expect((await ended(store, 'tr-ok')).status).to.equal('COMPLETED');
      const { root, traceId, spans } = await traceOf('tr-ok', 5);
      expect(treeOf(spans)).to.deep.equal(['saga Traced', '  step a', '    step b', '      Echo', '      step c']);
      expect(parentOf(root)).to.equal(undefined);
      const [a, b, c, echo] = ['step a', 'step b', 'step c', 'Echo'].map((n) => only(spans, n));
      expect(a.attributes).to.include({ 'saga.request_id': 'tr-ok', 'saga.facade': 'Traced', 'saga.version': 1, 'saga.node': 'a', 'saga.attempt': 1, 'saga.outcome': 'succeeded' });
      expect(b.attributes).to.include({ 'saga.request_id': 'tr-ok', 'saga.node': 'b' });
      expect(c.status.code).to.not.equal(SpanStatusCode.ERROR);
      // The upstream got the client span's context: the service behind the step joins the saga's trace.
      const sent = upstream.seen.find((md) => md.get('x-request-id')[0] === 'tr-ok')!;
      expect(sent.get('traceparent')[0]).to.equal(`00-${traceId}-${echo.spanContext().spanId}-01`);
      // Stored with the saga: the root's context.
      expect((await store.get('tr-ok'))!.traceParent).to.equal(`00-${traceId}-${root.spanContext().spanId}-01`);
      // The saga's log lines carry its trace id.
      expect(lines.filter((l) => l.requestId === 'tr-ok' && l.message === 'step succeeded').map((l) => l.traceId)).to.deep.equal([traceId, traceId, traceId]);
    });

    it('a compensated saga: the failed step records its error, the rollback runs under it, each compensation under the rollback (c too: it may have acted)', async () => {
      await orchestrator.startAsync('Traced', 'tr-fail', { fail: true });
      expect((await ended(store, 'tr-fail')).status).to.equal('COMPENSATED');
      const { spans } = await traceOf('tr-fail', 9);
      expect(treeOf(spans)).to.deep.equal([
        'saga Traced', '  step a', '    step b', '      Echo', '      step c',
        '        rollback Traced', '          compensate c', '          compensate b', '          compensate a',
      ]);
      const c = only(spans, 'step c');
      expect(c.status).to.deep.equal({ code: SpanStatusCode.ERROR, message: 'c refused' });
      expect(c.attributes).to.include({ 'saga.outcome': 'failed', 'saga.error_code': 'FAILED_PRECONDITION' });
      expect(c.events.map((e) => [e.name, e.attributes?.['exception.message']])).to.deep.equal([['exception', 'c refused']]);
      expect(only(spans, 'compensate a').attributes).to.include({ 'saga.request_id': 'tr-fail', 'saga.node': 'a', 'saga.outcome': 'compensated' });
    });
  });

  it('an event from another call joins the saga\'s trace: the wait span lasts until it, what it sets off runs under it', async () => {
    const transport = new MemoryTransport(TOPICS, silentLogger);
    const orchestrator = await orchestratorOn(store, transport, [waiter()], 'pod-w');
    cleanups.push(async () => { await orchestrator.shutdown(); await transport.close(); });
    await orchestrator.startAsync('Waiter', 'tr-wait', {});
    await waitFor(async () => (await store.get('tr-wait'))?.steps.find((s) => s.name === 'go')?.status === 'WAITING', 10_000, 'the saga to wait');
    // The sender's own span, in a trace of its own: the event still lands in the saga's.
    const sender = tracing.tracer().startSpan('sender');
    await context.with(trace.setSpan(context.active(), sender), () => orchestrator.sendEvent('tr-wait', 'go', { ok: true }));
    sender.end();
    expect((await ended(store, 'tr-wait')).status).to.equal('COMPLETED');
    const root = only(tracing.spans().filter((s) => s.attributes['saga.request_id'] === 'tr-wait'), 'saga Waiter');
    const spans = await waitFor(() => { const t = tracing.trace(root.spanContext().traceId); return t.length >= 5 && t; }, 10_000, 'the spans of tr-wait');
    expect(treeOf(spans)).to.deep.equal(['saga Waiter', '  step a', '  wait go', '  event go', '    step b']);
    expect(only(spans, 'event go').attributes).to.include({ 'saga.request_id': 'tr-wait', 'saga.event': 'go' });
    expect(only(spans, 'wait go').attributes).to.include({ 'saga.node': 'go', 'saga.outcome': 'succeeded' });
    expect(tracing.trace(sender.spanContext().traceId).map((s) => s.name)).to.deep.equal(['sender']);
  });

  it('a saga taken over by another instance after its owner shut down continues the same trace, from the context in the store', async () => {
    const ran = { A: [] as string[], B: [] as string[] };
    // Each instance its own transport: nothing but the store passes from A to B.
    const transportA = new MemoryTransport(TOPICS, silentLogger);
    const a = await orchestratorOn(store, transportA, [napper(ran.A)], 'pod-a');
    await a.startAsync('Napper', 'tr-nap', {});
    await waitFor(async () => (await store.get('tr-nap'))?.steps.find((s) => s.name === 'nap')?.status === 'WAITING', 10_000, 'the saga to sleep');
    await a.shutdown();
    await transportA.close();
    // A second store on the same database: B shares nothing in memory with A.
    const storeB = await PostgresSagaStore.create({ dsn, poolSize: 5, leaseTtlMs: 2_000, connectTimeoutMs: 2_000 }, silentLogger);
    const transportB = new MemoryTransport(TOPICS, silentLogger);
    const b = await orchestratorOn(storeB, transportB, [napper(ran.B)], 'pod-b');
    cleanups.push(async () => { await b.shutdown(); await transportB.close(); await storeB.close(); });
    const saga = await ended(store, 'tr-nap');
    expect([saga.status, saga.owner?.startsWith('pod-b/'), ran]).to.deep.equal(['COMPLETED', true, { A: ['a'], B: ['b'] }]);

    const root = only(tracing.spans().filter((s) => s.attributes['saga.request_id'] === 'tr-nap'), 'saga Napper');
    const spans = await waitFor(() => { const t = tracing.trace(root.spanContext().traceId); return t.length >= 4 && t; }, 10_000, 'the spans of tr-nap');
    expect(treeOf(spans)).to.deep.equal(['saga Napper', '  step a', '  sleep nap', '  step b']);
    const nap = only(spans, 'sleep nap');
    // Recorded by B when the sleep ended, with the times on record: it began on A.
    const ms = (t: [number, number]) => t[0] * 1_000 + t[1] / 1e6;
    expect(ms(nap.endTime) - ms(nap.startTime)).to.be.at.least(1_490);
    expect(nap.attributes).to.include({ 'saga.node': 'nap', 'saga.outcome': 'succeeded' });
  });
});
