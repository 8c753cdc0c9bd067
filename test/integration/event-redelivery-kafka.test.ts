import { expect } from 'chai';
import { OrchestratorError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { Message, MessageHandler } from '../../src/engine/transport';
import { MemorySagaStore } from '../../src/store/memory-store';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { countOf, EV_TOPICS, FAST, produce, startInstance, ticks, visitReaches, type Runs } from '../helpers/answer-flow';
import { uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { waitFor } from '../helpers/wait';

/**
 * Issue 16 §2.12: an event on the events topic without an idempotency key, delivered again (the
 * consumer applied it and went away before its offset was committed; another member of the group
 * fetches it again) must count once: its key comes from where the record is (topic, partition,
 * offset). Counted where it acts: the saga's EVENT_RECEIVED entries and the runs of the step the
 * event sets off (the Ticks facade runs `count` once per `tick`).
 */
describe('a keyless event delivered twice counts once', function () {
  this.timeout(180_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('on Kafka + Postgres: applied by one instance that then goes away uncommitted, fetched again by the next: one event, one run', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const runs: Runs = [];
    // Instance a applies the first tick, then plays a process that dies before the commit: every
    // later delivery fails as retryable (kept, never committed) until it is stopped.
    let applied = 0;
    const crashAfterApplying = (handler: MessageHandler): MessageHandler => async (m: Message) => {
      if (m.topic !== 'ev.events') return handler(m);
      if (applied++ === 0) {
        await handler(m);
      }
      throw new OrchestratorError('UNAVAILABLE', 'dying before the commit', true);
    };
    const a = await startInstance({ dsn: db.dsn, names, podId: 'a', defs: [ticks('a', runs)], wrap: crashAfterApplying });
    cleanups.push(() => a.stop());
    const id = 'tick-1';
    await a.orchestrator.startSaga('Ticks', id, {});
    await visitReaches(a.store, id, 'tick', 'WAITING');
    await produce(names.topicPrefix, 'ev.events', [{ key: id, value: JSON.stringify({ event: 'tick', payload: { n: 1 } }) }]);
    await visitReaches(a.store, id, 'tick#2', 'WAITING');
    await waitFor(() => applied >= 2, 60_000, 'instance a to hold the record uncommitted');
    await a.stop();

    const b = await startInstance({ dsn: db.dsn, names, podId: 'b', defs: [ticks('b', runs)] });
    cleanups.push(() => b.stop());
    // A second, keyed tick after it on the same partition: once it is in, the record before it was handled by b.
    await produce(names.topicPrefix, 'ev.events', [{ key: id, value: JSON.stringify({ event: 'tick', payload: { n: 2 }, idempotencyKey: 'tick-2' }) }]);
    const saga = await waitFor(async () => {
      const s = await b.store.get(id);
      return s?.history.some((e) => e.type === 'EVENT_RECEIVED' && e.detail?.includes('"tick-2"')) ? s : undefined;
    }, 60_000, 'the second tick');
    await waitFor(() => runs.filter((r) => r.endsWith(`:${id}`)).length >= 2, 60_000, 'the second count');
    const received = saga.history.filter((e) => e.type === 'EVENT_RECEIVED').map((e) => (JSON.parse(e.detail!) as { payload: unknown }).payload);
    expect(received, 'events received').to.deep.equal([{ n: 1 }, { n: 2 }]);
    expect(runs.filter((r) => r.endsWith(`:${id}`)).map((r) => r.split(':')[1]), 'count runs').to.deep.equal(['count', 'count']);
  });

  it('in process: the same delivered message handled twice counts once; another record with the same value counts again', async () => {
    const runs: Runs = [];
    const store = new MemorySagaStore(2_000);
    const transport = new MemoryTransport(EV_TOPICS, silentLogger);
    const delivered: Message[] = [];
    const orchestrator = new Orchestrator({
      registry: new FacadeRegistry().register(ticks('m', runs)), store, transport: {
        publish: (m) => transport.publish(m), drain: () => transport.drain(), close: () => transport.close(), ping: () => transport.ping(),
        subscribe: (topics, handler) => transport.subscribe(topics, async (m) => {
          if (m.topic === 'ev.events') delivered.push(m);
          await handler(m);
        }),
      },
      logger: silentLogger, podId: 'm', outcomeTopic: 'outcomes', eventTopic: 'ev.events', options: FAST,
    });
    await orchestrator.start();
    cleanups.push(async () => { await orchestrator.shutdown(); await transport.close(); });
    const id = 'tick-m';
    await orchestrator.startSaga('Ticks', id, {});
    await waitFor(async () => (await store.get(id))?.steps.some((v) => v.name === 'tick' && v.status === 'WAITING'), 10_000, 'tick to wait');
    // Settled: the latest tick waits and every count visit ran (whatever number of ticks came).
    const quiet = () => waitFor(async () => {
      const s = await store.get(id);
      const latestTick = s?.steps.filter((v) => v.name.split('#')[0] === 'tick').at(-1);
      return latestTick?.status === 'WAITING' && s!.steps.every((v) => v.name.split('#')[0] !== 'count' || ['SUCCEEDED', 'PENDING'].includes(v.status))
        && runs.length === s!.steps.filter((v) => v.name.split('#')[0] === 'count' && v.status === 'SUCCEEDED').length;
    }, 60_000, 'the saga to wait for a tick again');
    const value = JSON.stringify({ event: 'tick', payload: { n: 1 } });
    await transport.publish({ topic: 'ev.events', key: id, value, headers: {} });
    await waitFor(() => delivered.length === 1 && runs.length === 1, 60_000, 'the first tick to run count');
    await orchestrator.handle(delivered[0]);
    await quiet();
    await transport.publish({ topic: 'ev.events', key: id, value, headers: {} });
    await waitFor(() => delivered.length === 2, 60_000, 'the second record');
    await orchestrator.handle(delivered[1]);
    await quiet();
    const saga = (await store.get(id))!;
    expect([countOf(saga, 'EVENT_RECEIVED'), runs.length], 'events received, count runs').to.deep.equal([2, 2]);
  });
});
