import { silentLogger } from '../../src/engine/logger';
import { Orchestrator, type EngineOptions } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaSnapshot } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import type { Message } from '../../src/engine/transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import type { TopicSpec } from '../../topics/topics';
import { fakeFacade, fakeStep, type FakeStepOptions, type Journal } from './fake-facade';
import { freshDatabase } from './postgres';
import { waitFor } from './wait';

/** The topics of the fake facades: Sync, Async (t.*) and Throttled (th.*), each with steps a, b, c. */
export const FAKE_TOPICS: TopicSpec[] = ['t.a', 't.b', 't.c', 'th.a', 'th.b', 'th.c', 'rb.sync', 'rb.async', 'rb.th', 'outcomes', 'dlq']
  .map((name) => ({ name, partitions: 1 }));

/**
 * Orchestrator processes sharing one real Postgres database, each with its own in-process transport
 * (a message reaches another instance only when a test hands it over). cleanup() stops them all.
 */
export class Instances {
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  constructor(private readonly options: Partial<EngineOptions>) {}

  /** A store on a fresh database, with leases of `leaseTtlMs`. */
  async store(leaseTtlMs: number): Promise<PostgresSagaStore> {
    const db = await freshDatabase();
    const store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 5, leaseTtlMs, connectTimeoutMs: 2_000 }, silentLogger);
    this.cleanups.push(async () => { await store.close(); await db.drop(); });
    return store;
  }

  /** One orchestrator process running the fake facades, whose steps record what they do in `journal`. */
  async start(store: SagaStore, podId: string, steps: Record<string, FakeStepOptions> = {}, transport = new MemoryTransport(FAKE_TOPICS, silentLogger)) {
    const journal: Journal = { calls: [] };
    const make = (topic?: string) => ['a', 'b', 'c'].map((n) => fakeStep(n, journal, { ...steps[n], topic: topic && `${topic}.${n}` }));
    const registry = new FacadeRegistry()
      .register(fakeFacade('Sync', 'sync', make(), 'rb.sync'))
      .register(fakeFacade('Async', 'async', make('t'), 'rb.async'))
      .register(fakeFacade('Throttled', 'throttled', make('th'), 'rb.th'));
    const orchestrator = await this.run(store, podId, registry, transport);
    return { orchestrator, journal, transport, registry };
  }

  /** One orchestrator process running the given facades on the fake topics. */
  async run(store: SagaStore, podId: string, registry: FacadeRegistry, transport = new MemoryTransport(FAKE_TOPICS, silentLogger)): Promise<Orchestrator> {
    const orchestrator = new Orchestrator({ registry, store, transport, logger: silentLogger, podId, outcomeTopic: 'outcomes', options: this.options });
    await orchestrator.start();
    this.cleanups.push(() => orchestrator.stop());
    return orchestrator;
  }

  /**
   * An async facade `name` whose step `s` (topic t.a, recording in `journal`) runs after a wait `w`
   * for the event `go`, or, with `stepFirst`, runs before it (the saga then ends on the wait).
   */
  static waitFacade(name: string, journal: Journal, stepFirst = false): FacadeRegistry {
    const step = { ...fakeStep('s', journal), topic: 't.a' };
    const nodes = stepFirst
      ? [step, { kind: 'wait' as const, name: 'w', events: ['go'], after: ['s'] }]
      : [{ kind: 'wait' as const, name: 'w', events: ['go'] }, { ...step, after: ['w'] }];
    return new FacadeRegistry().register({ ...fakeFacade(name, 'async', [], 'rb.async'), nodes });
  }

  async cleanup(): Promise<void> {
    for (const close of this.cleanups.splice(0).reverse()) await close();
  }
}

/** Polls the store until the saga has ended (neither RUNNING nor COMPENSATING). */
export function ended(store: SagaStore, requestId: string): Promise<SagaSnapshot> {
  return waitFor(async () => {
    const saga = await store.get(requestId);
    return saga && !['RUNNING', 'COMPENSATING'].includes(saga.status) ? saga : undefined;
  }, 20_000, `saga ${requestId} to end`);
}

/** A transport that keeps the first message of `topic` instead of delivering it: the test hands it to an instance. */
export function holding(topic: string): { transport: MemoryTransport; held: () => Message } {
  const transport = new MemoryTransport(FAKE_TOPICS, silentLogger);
  const publish = transport.publish.bind(transport);
  let held: Message | undefined;
  transport.publish = async (m: Message) => {
    if (m.topic === topic && !held) {
      held = m;
      return;
    }
    return publish(m);
  };
  return { transport, held: () => held! };
}
