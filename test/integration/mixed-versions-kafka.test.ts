import { expect } from 'chai';
import { StepError } from '../../src/engine/errors';
import type { FacadeDefinition, StepDefinition } from '../../src/engine/facade';
import { sequence } from '../../src/engine/graph';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import type { TopicSpec } from '../../topics/topics';
import { ended } from '../helpers/instances';
import { collect, KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { waitFor } from '../helpers/wait';

// Two partitions per node topic: the two instances of one consumer group get one each.
const TOPICS: TopicSpec[] = [
  ...['mv.a', 'mv.b', 'mv.rb'].map((name) => ({ name, partitions: 2, deadLetter: 'dlq' })),
  { name: 'outcomes', partitions: 1, deadLetter: 'dlq' },
  { name: 'dlq', partitions: 1 },
];

type In = { fail?: boolean };

/** Version 1: a → b. Version 2: a → b → c (c on b's topic; `fail` makes c fail: all three are undone, c too since it may have acted). */
function flow(version: 1 | 2, calls: string[]): FacadeDefinition<In, unknown> {
  const step = (name: string, topic: string): StepDefinition<In> => ({
    name, topic, retry: { maxAttempts: 1 },
    run: async (ctx) => {
      calls.push(`run:${name}:${ctx.requestId}`);
      if (name === 'c' && ctx.input.fail) throw new StepError('FAILED_PRECONDITION', 'c refused', false);
      return { name };
    },
    compensate: async (ctx) => { calls.push(`undo:${name}:${ctx.requestId}`); },
  });
  const nodes = [step('a', 'mv.a'), step('b', 'mv.b'), ...(version === 2 ? [step('c', 'mv.b')] : [])];
  return { name: 'Mixed', version, mode: 'async', nodes: sequence(...nodes), rollbackTopic: 'mv.rb', parseInput: (raw) => (raw ?? {}), result: () => ({}) };
}

/** Keeps the messages it logs: what the instance without version 2 handed back. */
function recordingLogger(lines: string[]): Logger {
  const log: Logger = { debug: () => undefined, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), child: () => log };
  return log;
}

/**
 * A rolling update: instance A has version 1 only, instance B versions 1 and 2, in one consumer
 * group. B's version 2 sagas send step and rollback messages that A's partitions receive: A hands
 * them back and B runs them; nothing is dead-lettered, lost or run twice.
 */
describe('a mixed deployment on Kafka + Postgres: messages of a version an instance lacks are handed back', function () {
  this.timeout(180_000);
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('every version 2 saga ends as it should, each step and compensation run once, by the instance that has the version', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const calls = { A: [] as string[], B: [] as string[] };
    const logged: string[] = [];
    const instance = async (who: 'A' | 'B', versions: (1 | 2)[]) => {
      const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 5, leaseTtlMs: 2_000, connectTimeoutMs: 2_000 }, silentLogger);
      const transport = await KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: who, partitionsConsumedConcurrently: 4, connectTimeoutMs: 20_000, ...names }, TOPICS, silentLogger);
      const registry = new FacadeRegistry();
      for (const v of versions) registry.register(flow(v, calls[who]));
      const orchestrator = new Orchestrator({
        registry, store, transport, logger: who === 'A' ? recordingLogger(logged) : silentLogger, podId: who, outcomeTopic: 'outcomes',
        options: { recoveryIntervalMs: 100, heartbeatMs: 200, stepTimeoutMs: 5_000 },
      });
      await orchestrator.start();
      cleanups.push(async () => { await orchestrator.shutdown(); await store.close(); });
      return { orchestrator, store };
    };
    const a = await instance('A', [1]);
    const dead = await collect(`${names.topicPrefix}dlq`);
    cleanups.push(() => dead.stop());
    const b = await instance('B', [1, 2]);

    // Until both have joined the group with a partition each: version 1 sagas run on both.
    let warm = 0;
    await waitFor(async () => {
      const id = `warm-${++warm}`;
      await a.orchestrator.startAsync('Mixed', id, {});
      await ended(a.store, id);
      return calls.A.some((c) => c.startsWith('run:')) && calls.B.some((c) => c.startsWith('run:'));
    }, 120_000, 'both instances to run version 1 steps');

    const ids = Array.from({ length: 20 }, (_, i) => `v2-${i}`);
    for (const [i, id] of ids.entries()) await b.orchestrator.startSaga('Mixed', id, { fail: i % 2 === 1 }, 2);
    for (const [i, id] of ids.entries()) {
      const saga = await ended(b.store, id);
      expect([saga.version, saga.status], id).to.deep.equal([2, i % 2 === 1 ? 'COMPENSATED' : 'COMPLETED']);
      const mine = calls.B.filter((c) => c.endsWith(`:${id}`)).map((c) => c.split(':').slice(0, 2).join(':'));
      expect(mine, id).to.deep.equal(i % 2 === 1 ? ['run:a', 'run:b', 'run:c', 'undo:c', 'undo:b', 'undo:a'] : ['run:a', 'run:b', 'run:c']);
      expect(calls.A.filter((c) => c.endsWith(`:${id}`)), `${id} on A`).to.deep.equal([]);
    }
    // A did receive some: by key, its partition holds about half of them.
    expect(logged.filter((m) => m.includes('handed back')).length, 'messages A handed back').to.be.greaterThan(0);
    expect(dead.messages.map((m) => m.key?.toString()), 'dead-lettered').to.deep.equal([]);
  });
});
