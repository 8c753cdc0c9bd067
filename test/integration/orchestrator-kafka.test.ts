import { expect } from 'chai';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { TERMINAL_STATUSES, type SagaSnapshot } from '../../src/engine/saga';
import type { StepDefinition } from '../../src/engine/facade';
import type { SagaStore } from '../../src/engine/store';
import { MemorySagaStore } from '../../src/store/memory-store';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { fakeFacade, fakeStep, type Journal } from '../helpers/fake-facade';
import { collect, KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { rejectionOf, waitFor } from '../helpers/wait';

type Steps = StepDefinition<{ n: number }, { step: string; n: number }>[];

/**
 * The engine over the real broker, with fake steps on the booking topics. One instance runs on an
 * in-memory store; two instances (two pods) each have their own Postgres store on one database.
 */
describe('Orchestrator over Kafka', function () {
  this.timeout(90_000);
  const running: { orchestrator: Orchestrator; transport: KafkaTransport }[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const { orchestrator, transport } of running.splice(0)) {
      orchestrator.stop();
      await transport.close();
    }
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A fresh database, and a store on it per pod, as separate pods have. */
  async function sharedDatabase(): Promise<() => Promise<PostgresSagaStore>> {
    const db = await freshDatabase();
    closers.push(() => db.drop());
    return async () => {
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 5, leaseTtlMs: 10_000, connectTimeoutMs: 2_000 }, silentLogger);
      closers.push(() => store.close());
      return store;
    };
  }

  async function instance(names: { topicPrefix: string; groupId: string }, store: SagaStore, podId: string, steps: (topic: (i: number) => string) => Steps) {
    const transport = await KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: podId, partitionsConsumedConcurrently: 8, connectTimeoutMs: 20_000, ...names }, ALL_TOPICS, silentLogger);
    const asyncTopics = [TOPICS.bookingAsyncCreateOrder.name, TOPICS.bookingAsyncCreatePayment.name];
    const throttledTopics = [TOPICS.bookingThrottledCreateOrder.name, TOPICS.bookingThrottledCreatePayment.name];
    const registry = new FacadeRegistry()
      .register(fakeFacade('Async', 'async', steps((i) => asyncTopics[i]), TOPICS.bookingAsyncRollback.name))
      .register(fakeFacade('Throttled', 'throttled', steps((i) => throttledTopics[i]), TOPICS.bookingThrottledRollback.name))
      .register(fakeFacade('Sync', 'sync', steps(() => ''), TOPICS.bookingSyncRollback.name));
    const orchestrator = new Orchestrator({
      registry, store, transport, logger: silentLogger, podId, outcomeTopic: TOPICS.sagaOutcomes.name,
      options: { compensation: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100, multiplier: 2, jitter: 0 } },
    });
    await orchestrator.start();
    running.push({ orchestrator, transport });
    return orchestrator;
  }

  const finished = (store: SagaStore, id: string, timeoutMs = 30_000) =>
    waitFor(async () => {
      const s = await store.get(id);
      return s && TERMINAL_STATUSES.includes(s.status) ? s : undefined;
    }, timeoutMs, `saga ${id} to finish`);

  const twoSteps = (journal: Journal, failSecond = false) => (topic: (i: number) => string): Steps => [
    fakeStep('a', journal, { topic: topic(0) || undefined }),
    fakeStep('b', journal, { topic: topic(1) || undefined, failRuns: failSecond ? Infinity : 0 }),
  ];

  it('moves an async saga node to node through Kafka to COMPLETED, messages keyed by request id', async () => {
    const names = uniqueKafkaNames();
    const store = new MemorySagaStore();
    const journal: Journal = { calls: [] };
    const orchestrator = await instance(names, store, 'p1', twoSteps(journal));
    const onTopic = await collect(names.topicPrefix + TOPICS.bookingAsyncCreatePayment.name);
    await orchestrator.startAsync('Async', 'k1', { n: 1 });
    const saga = await finished(store, 'k1');
    expect(saga.status).to.equal('COMPLETED');
    expect(journal.calls).to.deep.equal(['run:a', 'run:b']);
    const m = await waitFor(() => onTopic.messages[0], 10_000, 'the second node message');
    await onTopic.stop();
    expect(m.key!.toString()).to.equal('k1');
    expect(m.headers!['x-node']!.toString()).to.equal('b');
    // Which saga and node, not its data: the handler reads the input and outputs from the store.
    expect(JSON.parse(m.value!.toString())).to.deep.include({ node: 'b', input: null, results: {} });
  });

  it('compensates an async saga through the rollback topic', async () => {
    const store = new MemorySagaStore();
    const journal: Journal = { calls: [] };
    const orchestrator = await instance(uniqueKafkaNames(), store, 'p1', twoSteps(journal, true));
    await orchestrator.startAsync('Async', 'k2', { n: 1 });
    expect((await finished(store, 'k2')).status).to.equal('COMPENSATED');
    expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'undo:b', 'undo:a']);
  });

  it('compensates a failed sync saga through its rollback topic consumer', async () => {
    const store = new MemorySagaStore();
    const journal: Journal = { calls: [] };
    const orchestrator = await instance(uniqueKafkaNames(), store, 'p1', twoSteps(journal, true));
    const err = await rejectionOf(orchestrator.runSync('Sync', 'k3', { n: 1 }));
    expect(err.code).to.equal('SAGA_ABORTED');
    const saga = await finished(store, 'k3');
    expect(saga.status).to.equal('COMPENSATED');
    expect(saga.history.map((e) => e.type)).to.include.members(['SAGA_COMPENSATING', 'COMPENSATION_SUCCEEDED', 'SAGA_COMPENSATED']);
  });

  it('two instances in one consumer group split the work and finish every saga', async () => {
    const names = uniqueKafkaNames();
    const storeOnDb = await sharedDatabase();
    const store = await storeOnDb();
    const journal: Journal = { calls: [] };
    const first = await instance(names, store, 'p1', twoSteps(journal));
    await instance(names, await storeOnDb(), 'p2', twoSteps(journal));
    const ids = Array.from({ length: 40 }, (_, i) => `split-${i}`);
    for (const id of ids) await first.startAsync('Async', id, { n: 1 });
    const sagas: SagaSnapshot[] = await Promise.all(ids.map((id) => finished(store, id, 60_000)));
    expect(sagas.every((s) => s.status === 'COMPLETED')).to.equal(true);
    const pods = new Set(sagas.flatMap((s) => s.history.filter((e) => e.type === 'STEP_SUCCEEDED').map((e) => e.podId)));
    expect([...pods].sort()).to.deep.equal(['p1', 'p2']);
  });

  it('a throttled call is answered by the instance holding it when the other instance ran the last step', async () => {
    const names = uniqueKafkaNames();
    const storeOnDb = await sharedDatabase();
    const store = await storeOnDb();
    const journal: Journal = { calls: [] };
    const first = await instance(names, store, 'p1', twoSteps(journal));
    await instance(names, await storeOnDb(), 'p2', twoSteps(journal));
    const ids = Array.from({ length: 30 }, (_, i) => `th-${i}`);
    const results = await Promise.all(ids.map((id) => first.runThrottled('Throttled', id, { n: 1 })));
    expect(results.every((r) => JSON.stringify(r) === '["a","b"]')).to.equal(true);
    const lastStepPods = await Promise.all(ids.map(async (id) => (await store.get(id))!.history.findLast((e) => e.type === 'STEP_SUCCEEDED')!.podId));
    expect(lastStepPods).to.include('p2');
  });
});
