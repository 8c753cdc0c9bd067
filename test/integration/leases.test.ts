import type { StepDefinition } from '../../src/engine/facade';
import { expect } from 'chai';
import type { Pool } from 'pg';
import { StoreUnavailableError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import { encodeMessage } from '../../src/engine/messages';
import type { EngineOptions } from '../../src/engine/orchestrator';
import { Saga, type SagaSnapshot } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import type { Message } from '../../src/engine/transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import type { FakeStepOptions } from '../helpers/fake-facade';
import { ended, FAKE_TOPICS, holding, Instances } from '../helpers/instances';
import { rejectionOf, waitFor } from '../helpers/wait';

const FAST: Partial<EngineOptions> = {
  stepTimeoutMs: 60_000,
  retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: 300,
  outcomePollMs: 50,
};

/** Who owns what, on the real Postgres: process incarnations, sagas given up on, renewals beside saves. */
describe('leases (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(FAST);
  afterEach(() => instances.cleanup());
  const store = async (leaseTtlMs = 300) => ({ store: await instances.store(leaseTtlMs) });
  /** One orchestrator process: its own transport (messages do not outlive it), the shared store. */
  const instance = (s: SagaStore, podId: string, steps: Record<string, FakeStepOptions> = {}, transport?: MemoryTransport) =>
    instances.start(s, podId, steps, transport);

  it('a process restarted under the same pod id takes over the sagas its predecessor left running', async () => {
    const { store: s } = await store();
    // The first process dies with step b in flight (its promise never settles; its loop stops).
    const first = await instance(s, 'pod-1', { b: { runMs: 3_600_000 } });
    // fire-and-forget: this call never settles (step b hangs); the test follows the saga in the store
    void first.orchestrator.runSync('Sync', 'restart-1', { n: 1 }).catch(() => undefined);
    await waitFor(async () => (await s.get('restart-1'))?.steps[1].status === 'RUNNING', 5_000, 'step b to start');
    first.orchestrator.stop();
    const second = await instance(s, 'pod-1');
    const saga = await ended(s, 'restart-1');
    expect(saga.status).to.equal('COMPENSATED');
    expect(second.journal.calls).to.deep.equal(['undo:b', 'undo:a']);
    expect(saga.owner).to.equal(second.orchestrator.owner);
    expect(saga.owner).to.match(/^pod-1\//).and.not.equal(first.orchestrator.owner);
  });

  it('a sync saga whose save failed mid-way is not kept alive by its lease: recovery compensates it', async () => {
    const { store: s } = await store();
    const { orchestrator, journal } = await instance(s, 'pod-2');
    // The store fails the save that records step b as started: a Postgres blip.
    const save = s.save.bind(s);
    s.save = async (saga, changes) => {
      if (saga.steps[1].status === 'RUNNING' && saga.steps[1].attempts === 1 && s.save !== save) {
        s.save = save;
        throw new StoreUnavailableError('save: connection reset');
      }
      return save(saga, changes);
    };
    const err = await rejectionOf(orchestrator.runSync('Sync', 'blip-1', { n: 1 }));
    expect(err.code).to.equal('UNAVAILABLE');
    const saga = await ended(s, 'blip-1');
    expect(saga.status).to.equal('COMPENSATED');
    expect(journal.calls).to.deep.equal(['run:a', 'undo:a']);
    // A retry with the same id gets the saga's real outcome, not a success.
    expect((await rejectionOf(orchestrator.runSync('Sync', 'blip-1', { n: 1 }))).code).to.equal('SAGA_ABORTED');
  });

  it('an async saga whose first publish and fallback save both failed is published by recovery; a retry answers truly', async () => {
    const { store: s } = await store();
    let failPublish = true;
    const transport = new MemoryTransport(FAKE_TOPICS, silentLogger);
    const publish = transport.publish.bind(transport);
    transport.publish = async (m: Message) => {
      if (failPublish && m.topic === 't.a') {
        failPublish = false;
        throw new Error('broker unreachable');
      }
      return publish(m);
    };
    const { orchestrator, journal } = await instance(s, 'pod-3', {}, transport);
    const save = s.save.bind(s);
    let failSave = true;
    s.save = async (saga, changes) => {
      if (failSave) {
        failSave = false;
        throw new StoreUnavailableError('save: connection reset');
      }
      return save(saga, changes);
    };
    expect((await rejectionOf(orchestrator.startAsync('Async', 'lost-1', { n: 1 }))).code).to.equal('UNAVAILABLE');
    expect(await orchestrator.startAsync('Async', 'lost-1', { n: 1 })).to.equal('lost-1');
    expect((await ended(s, 'lost-1')).status).to.equal('COMPLETED');
    expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
  });

  it('retries a failed compensation from a durable timer in the store, not by holding the rollback message', async () => {
    const { store: s } = await store();
    const { orchestrator, journal } = await instance(s, 'pod-4', { b: { failRuns: Infinity }, a: { failCompensations: 1 } });
    orchestrator.options.compensation = { maxAttempts: 3, initialBackoffMs: 400, maxBackoffMs: 400, multiplier: 1, jitter: 0 };
    await rejectionOf(orchestrator.runSync('Sync', 'timer-1', { n: 1 }));
    const waiting = await waitFor(async () => {
      const saga = await s.get('timer-1');
      return saga?.steps[0].status === 'COMPENSATING' && saga.wakeAt ? saga : undefined;
    }, 10_000, 'the compensation of a to wait for its next attempt');
    expect(Date.parse(waiting.wakeAt!)).to.be.greaterThan(Date.parse(waiting.updatedAt));
    expect((await ended(s, 'timer-1')).status).to.equal('COMPENSATED');
    expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'undo:b', 'undo:a', 'undo:a']);
  });

  it('retries a throttled step from its durable timer while the caller waits, and answers the caller', async () => {
    const { store: s } = await store();
    const { orchestrator, journal } = await instance(s, 'pod-5', { b: { failRuns: 2, retryable: true } });
    orchestrator.options.retry = { maxAttempts: 5, initialBackoffMs: 50, maxBackoffMs: 50, multiplier: 1, jitter: 0 };
    expect(await orchestrator.runThrottled('Throttled', 'th-retry', { n: 1 })).to.deep.equal(['a', 'b', 'c']);
    expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:b', 'run:b', 'run:c']);
  });

  it('a rollback message for a saga another live instance is compensating is skipped; a dead one is taken over', async () => {
    const { store: s } = await store();
    // pod-a's compensation of b never ends: it holds the saga under a live lease.
    const a = await instance(s, 'pod-a', { c: { failRuns: Infinity }, b: { failCompensations: Infinity, runMs: 0 } });
    const hang = a.registry.get('Sync').nodes[1] as StepDefinition;
    hang.compensate = () => new Promise(() => undefined);
    // fire-and-forget: this call never settles (b's compensation hangs); the test follows the saga in the store
    void a.orchestrator.runSync('Sync', 'twice-1', { n: 1 }).catch(() => undefined);
    await waitFor(async () => (await s.get('twice-1'))?.steps[1].status === 'COMPENSATING', 10_000, 'b to be compensating');
    const b = await instance(s, 'pod-b');
    const rollback = encodeMessage('rb.sync', {
      kind: 'rollback', requestId: 'twice-1', facade: 'Sync', version: 1, failedNode: 'c', error: { code: 'SAGA_ABORTED', message: 'x' }, completed: [],
    });
    await b.orchestrator.handle(rollback);
    expect(b.journal.calls).to.deep.equal([]);
    expect((await s.get('twice-1'))!.owner).to.equal(a.orchestrator.owner);
    // pod-a dies: its lease lapses, pod-b takes the saga over and counts the cut-off attempt as failed.
    a.orchestrator.stop();
    const saga = await ended(s, 'twice-1');
    expect(saga.status).to.equal('COMPENSATED');
    expect(b.journal.calls).to.deep.equal(['undo:b', 'undo:a']);
    expect(saga.history.filter((e) => e.step === 'b' && e.type.startsWith('COMPENSATION_')).map((e) => e.type))
      .to.deep.equal(['COMPENSATION_STARTED', 'COMPENSATION_FAILED', 'COMPENSATION_STARTED', 'COMPENSATION_SUCCEEDED']);
  });

  it('a throttled step taken by another instance that dies is run again as a new attempt, so the record shows both runs', async () => {
    const { store: s } = await store(5_000);
    const a = holding('th.a');
    const owner = await instance(s, 'pod-a', {}, a.transport);
    const taker = await instance(s, 'pod-b', { a: { runMs: 3_600_000 } });
    const call = owner.orchestrator.runThrottled('Throttled', 'taken-1', { n: 1 });
    await waitFor(() => a.held(), 5_000, 'the first step message');
    // pod-b takes the attempt from its message, runs it, and dies with it in flight.
    void taker.orchestrator.handle(a.held()).catch(() => undefined);
    await waitFor(() => taker.journal.calls.includes('run:a'), 5_000, 'pod-b to run the attempt');
    taker.orchestrator.stop();
    // Kafka hands the message to the owner once the taker's session times out (10 s): by then the
    // owner's in-memory copy of the saga is too old to be used (2 heartbeats + 1 s; 1.1 s here).
    await new Promise((r) => setTimeout(r, 1_200));
    // The attempt may have run, so the owner records a new one.
    await owner.orchestrator.handle(a.held());
    expect(await call).to.deep.equal(['a', 'b', 'c']);
    const saga = (await s.get('taken-1'))!;
    expect(taker.journal.calls.concat(owner.journal.calls)).to.deep.equal(['run:a', 'run:a', 'run:b', 'run:c']);
    expect(saga.steps[0]).to.include({ status: 'SUCCEEDED', attempts: 2 });
    expect(saga.history.filter((e) => e.step === 'a').map((e) => `${e.type} ${e.detail ?? ''}`)).to.deep.equal([
      'STEP_STARTED attempt 1', `STEP_TAKEN attempt 1 by ${taker.orchestrator.owner}`, 'STEP_STARTED attempt 2', 'STEP_SUCCEEDED ',
    ]);
  });

  it('an async step whose owner stopped renewing its lease is run as a new attempt; one whose owner is alive, as recorded', async () => {
    const { store: s } = await store(5_000);
    const alive = holding('t.a');
    const owner = await instance(s, 'pod-a', {}, alive.transport);
    const other = await instance(s, 'pod-b');
    await owner.orchestrator.startAsync('Async', 'handoff-1', { n: 1 });
    await other.orchestrator.handle(alive.held());
    await waitFor(async () => (await s.get('handoff-1'))?.status === 'COMPLETED', 10_000, 'handoff-1 to complete');
    const handedOff = (await s.get('handoff-1'))!.steps[0];
    expect(handedOff.attempts).to.equal(1);

    const dead = holding('t.a');
    const gone = await instance(s, 'pod-c', {}, dead.transport);
    await gone.orchestrator.startAsync('Async', 'handoff-2', { n: 1 });
    gone.orchestrator.stop();
    // Its lease is still valid for seconds, but no heartbeat renews it any more.
    await waitFor(async () => ((await s.get('handoff-2'))?.leaseAgeMs ?? 0) > 2 * 50 + 1_000, 10_000, 'the lease to go unrenewed');
    await other.orchestrator.handle(dead.held());
    await waitFor(async () => (await s.get('handoff-2'))?.status === 'COMPLETED', 10_000, 'handoff-2 to complete');
    expect((await s.get('handoff-2'))!.steps[0]).to.include({ attempts: 2 });
    // Who took the attempt that another process recorded is on record.
    expect(handedOff.runner).to.equal(other.orchestrator.owner);
  });

  it('a process that shuts down hands its unfinished sagas to the other instances at once, not when their leases lapse', async () => {
    const { store: s } = await store(60_000);
    const held = holding('t.a');
    const leaving = await instance(s, 'pod-a', {}, held.transport);
    const staying = await instance(s, 'pod-b');
    await leaving.orchestrator.startAsync('Async', 'leaving-1', { n: 1 });
    await waitFor(() => held.held(), 5_000, 'the first step message');
    // Its message never reaches anyone (as if the consumer had given it back): only recovery can run the saga.
    await leaving.orchestrator.shutdown();
    const saga = await ended(s, 'leaving-1');
    expect(saga).to.include({ status: 'COMPLETED', owner: staying.orchestrator.owner });
    expect(staying.journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
  });

  it('renewing leases while batched saves lock the same sagas in another order never deadlocks', async () => {
    const { store: s } = await store();
    const ids = Array.from({ length: 200 }, (_, i) => `dl-${String(i).padStart(3, '0')}`);
    for (const requestId of ids) {
      const saga = Saga.start({ requestId, facade: 'Async', version: 1, mode: 'async', input: {}, steps: ['a'], podId: 'p/1' });
      await s.create(saga.view());
    }
    // Counted where they happen: a batch that fails on a deadlock is retried saga by saga, which hides it.
    const pool = (s as unknown as { pool: Pool }).pool;
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    const deadlocks: string[] = [];
    (pool as unknown as { query: unknown }).query = async (...args: unknown[]) => query(...args).catch((err: { code?: string; message: string }) => {
      if (err.code === '40P01') deadlocks.push(err.message);
      throw err;
    });
    const snapshots = new Map<string, SagaSnapshot>();
    for (const id of ids) snapshots.set(id, (await s.get(id))!);
    let renewing = true;
    const renewals = (async () => {
      let renewed = 0;
      while (renewing) renewed += await s.renewLeases('p/1');
      return renewed;
    })();
    for (let round = 0; round < 15; round++) {
      // Every saga saved at once, submitted in a different order each round: batches of many rows.
      const order = [...ids].sort(() => Math.random() - 0.5);
      await Promise.all(order.map(async (id) => {
        const saga = Saga.adopt(snapshots.get(id)!, 'p');
        saga.wakeAt(new Date(Date.now() + 60_000 + round));
        const revision = await s.save(saga.view(), saga.changes());
        snapshots.set(id, { ...saga.snapshot(), revision });
      }));
    }
    renewing = false;
    expect(await renewals).to.be.greaterThan(0);
    expect(deadlocks).to.deep.equal([]);
  });
});
