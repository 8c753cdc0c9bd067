import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { toGrpcError } from '../../src/grpc/status';
import { SagaAbortedError, ValidationError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import { encodeMessage } from '../../src/engine/messages';
import { Orchestrator, type EngineOptions } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { Saga, type SagaSnapshot } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import type { Message, Transport } from '../../src/engine/transport';
import type { TopicSpec } from '../../topics/topics';
import { memoryBackendOf, realBackendOf, type Backend } from '../helpers/backends';
import { fakeFacade, fakeStep, type FakeStepOptions, type Journal } from '../helpers/fake-facade';
import { rejectionOf, waitFor } from '../helpers/wait';

const TOPICS: TopicSpec[] = ['t.a', 't.b', 't.c', 'rb.sync', 'rb.async', 'th.a', 'th.b', 'th.c', 'rb.th', 'outcomes']
  .map((name) => ({ name, partitions: 1, deadLetter: 'dlq' }));
TOPICS.push({ name: 'dlq', partitions: 1 });

const FAST: Partial<EngineOptions> = {
  stepTimeoutMs: 1_000,
  retry: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 200, multiplier: 2, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  outcomePollMs: 50,
};

interface Setup { orchestrator: Orchestrator; transport: Transport; store: SagaStore; journal: Journal }

const memoryBackend = (): Backend => memoryBackendOf(TOPICS);
const realBackend = (): Backend => realBackendOf(TOPICS);

let backend: Backend = memoryBackend();

async function setup(opts: Record<string, FakeStepOptions> = {}, options: Partial<EngineOptions> = {}, givenStore?: SagaStore): Promise<Setup> {
  const store = givenStore ?? await backend.store(1_000);
  const journal: Journal = { calls: [] };
  const steps = (topic?: string) => ['a', 'b', 'c'].map((n) => fakeStep(n, journal, { ...opts[n], topic: topic && `${topic}.${n}` }));
  const registry = new FacadeRegistry()
    .register(fakeFacade('Sync', 'sync', steps(), 'rb.sync'))
    .register(fakeFacade('Async', 'async', steps('t'), 'rb.async'))
    .register(fakeFacade('Throttled', 'throttled', steps('th'), 'rb.th'));
  const transport = await backend.transport();
  const orchestrator = new Orchestrator({
    registry, store, transport, logger: silentLogger, podId: 'test', outcomeTopic: 'outcomes', options: { ...FAST, ...options },
  });
  await orchestrator.start();
  running.push(orchestrator);
  return { orchestrator, transport, store, journal };
}

const running: Orchestrator[] = [];

const finished = (store: SagaStore, id: string, timeoutMs = 10_000) =>
  waitFor(async () => {
    const s = await store.get(id);
    return s && ['COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED'].includes(s.status) ? s : undefined;
  }, timeoutMs, `saga ${id} to finish`);

const statuses = (saga: SagaSnapshot) => saga.steps.map((s) => s.status);

/** The messages published through `transport` from now on. */
function spyOnPublish(transport: Transport): Message[] {
  const published: Message[] = [];
  const publish = transport.publish.bind(transport);
  transport.publish = (m) => {
    published.push(m);
    return publish(m);
  };
  return published;
}

/** The messages `orchestrator` has finished handling (successfully or not) from now on, and when. */
function spyOnHandle(orchestrator: Orchestrator): { message: Message; at: number }[] {
  const handled: { message: Message; at: number }[] = [];
  const handle = orchestrator.handle.bind(orchestrator);
  orchestrator.handle = (message) => handle(message).finally(() => { handled.push({ message, at: Date.now() }); });
  return handled;
}

/** Every saga as `store` was asked to save it, from now on. */
function spyOnSave(store: SagaStore): SagaSnapshot[] {
  const saved: SagaSnapshot[] = [];
  const save = store.save.bind(store);
  store.save = (saga, changes) => {
    saved.push(structuredClone(saga));
    return save(saga, changes);
  };
  return saved;
}

for (const make of [memoryBackend, realBackend]) {
describe(`Orchestrator (${make().name})`, function () {
  this.timeout(60_000);
  before(() => { backend = make(); });
  after(() => backend.close());
  afterEach(async () => {
    running.splice(0).forEach((o) => o.stop());
    await backend.cleanup();
  });

  describe('sync facade', () => {
    it('runs the steps in order and returns the combined result', async () => {
      const { orchestrator, store, journal } = await setup();
      expect(await orchestrator.runSync('Sync', 'r1', { n: 7 })).to.deep.equal(['a', 'b', 'c']);
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
      const saga = (await store.get('r1'))!;
      expect(saga.status).to.equal('COMPLETED');
      expect(saga.steps.map((s) => [s.status, s.output])).to.deep.equal([
        ['SUCCEEDED', { step: 'a', n: 7 }], ['SUCCEEDED', { step: 'b', n: 7 }], ['SUCCEEDED', { step: 'c', n: 7 }],
      ]);
    });

    it('on a failed node answers SagaAbortedError naming it, then compensates every step that started, in reverse', async () => {
      const { orchestrator, store, journal } = await setup({ c: { failRuns: Infinity } });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'r2', { n: 1 }));
      expect(err).to.be.instanceOf(SagaAbortedError);
      expect(err.failedStep).to.equal('c');
      expect(err.message).to.match(/aborted at node c: c refused/);
      const saga = await finished(store, 'r2');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c', 'undo:c', 'undo:b', 'undo:a']);
      expect(journal.undoOutputs).to.deep.equal({ a: { step: 'a', n: 1 }, b: { step: 'b', n: 1 }, c: undefined });
      expect(statuses(saga)).to.deep.equal(['COMPENSATED', 'COMPENSATED', 'COMPENSATED']);
      expect(saga.error).to.equal('c: c refused');
    });

    it('retries a retryable failure with growing backoff, then succeeds', async () => {
      const { orchestrator, store, journal } = await setup({ b: { failRuns: 2, retryable: true } });
      await orchestrator.runSync('Sync', 'rt1', { n: 1 });
      const saga = (await store.get('rt1'))!;
      expect(saga.status).to.equal('COMPLETED');
      expect(saga.steps[1].attempts).to.equal(3);
      const [t1, t2, t3] = journal.runAt!.b;
      expect(t2 - t1).to.be.at.least(20);
      expect(t3 - t2).to.be.at.least(40);
      expect(saga.history.filter((e) => e.type === 'STEP_ATTEMPT_FAILED').map((e) => e.step)).to.deep.equal(['b', 'b']);
    });

    it('gives up after maxAttempts of a retryable failure and compensates', async () => {
      const { orchestrator, store } = await setup({ b: { failRuns: Infinity, retryable: true, retry: { maxAttempts: 2 } } });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'rt2', { n: 1 }));
      expect(err.code).to.equal('SAGA_ABORTED');
      expect(err.causeCode).to.equal('UNAVAILABLE');
      const saga = await finished(store, 'rt2');
      expect(saga.steps[1].attempts).to.equal(2);
      expect(saga.status).to.equal('COMPENSATED');
    });

    it('does not retry a non-retryable failure', async () => {
      const { orchestrator, store } = await setup({ a: { failRuns: Infinity, retryable: false } });
      await rejectionOf(orchestrator.runSync('Sync', 'rt3', { n: 1 }));
      expect((await finished(store, 'rt3')).steps[0].attempts).to.equal(1);
    });

    it('times out a step that takes too long, even one that ignores its signal, and retries it', async () => {
      // Every run of a hangs, deaf to its signal: only the step timeout can end the call.
      const { orchestrator, store, journal } = await setup({ a: { gate: new Promise(() => undefined), timeoutMs: 50, retry: { maxAttempts: 2 } } });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'to1', { n: 1 }));
      expect(journal.calls.filter((c) => c.startsWith('run:'))).to.deep.equal(['run:a', 'run:a']);
      expect(err.causeCode).to.equal('DEADLINE_EXCEEDED');
      const saga = await finished(store, 'to1');
      expect(saga.steps[0].attempts).to.equal(2);
      expect(saga.steps[0].error).to.equal('a timed out after 50 ms');
    });

    it('compensates when the saga deadline passes, and answers DEADLINE_EXCEEDED', async () => {
      const { orchestrator, store } = await setup({ b: { runMs: 500, honourSignal: true } });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'dl1', { n: 1 }, { deadline: new Date(Date.now() + 100) }));
      expect(err.causeCode).to.equal('DEADLINE_EXCEEDED');
      expect((await finished(store, 'dl1')).status).to.equal('COMPENSATED');
    });

    it('retries a failing compensation and records every attempt', async () => {
      const { orchestrator, store } = await setup({ b: { failRuns: Infinity }, a: { failCompensations: 2 } });
      await rejectionOf(orchestrator.runSync('Sync', 'r3', { n: 1 }));
      const saga = await finished(store, 'r3');
      expect(saga.status).to.equal('COMPENSATED');
      expect(saga.steps[0].compensationAttempts).to.equal(3);
      expect(saga.history.filter((e) => e.type === 'COMPENSATION_FAILED')).to.have.length(2);
    });

    it('ends COMPENSATION_FAILED, error kept, when a compensation runs out of attempts; RetryCompensation finishes it', async () => {
      const { orchestrator, store, journal } = await setup({ c: { failRuns: Infinity, noCompensation: true }, b: { failCompensations: 3 } });
      await rejectionOf(orchestrator.runSync('Sync', 'r4', { n: 1 }));
      const failed = await finished(store, 'r4');
      expect(failed.status).to.equal('COMPENSATION_FAILED');
      expect(failed.error).to.equal('compensation of b failed after 3 attempts: b compensation broke');
      expect(statuses(failed)).to.deep.equal(['SUCCEEDED', 'COMPENSATION_FAILED', 'FAILED']);
      await orchestrator.retryCompensation('r4');
      const saga = await finished(store, 'r4');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls.filter((c) => c.startsWith('undo'))).to.deep.equal(['undo:b', 'undo:b', 'undo:b', 'undo:b', 'undo:a']);
      // b: 3 failed attempts, then one that succeeds; a: one that succeeds (a STARTED and an outcome event each).
      expect(saga.history.filter((e) => e.type.startsWith('COMPENSATION_')).length).to.equal(10);
    });

    it('refuses RetryCompensation and CancelSaga on a finished saga with FAILED_PRECONDITION', async () => {
      const { orchestrator } = await setup();
      await orchestrator.runSync('Sync', 'done', { n: 1 });
      expect((await rejectionOf(orchestrator.retryCompensation('done'))).code).to.equal('FAILED_PRECONDITION');
      expect((await rejectionOf(orchestrator.cancelSaga('done'))).code).to.equal('FAILED_PRECONDITION');
      expect((await rejectionOf(orchestrator.cancelSaga('nope'))).code).to.equal('NOT_FOUND');
    });

    it('rejects bad input with ValidationError and records no saga', async () => {
      const { orchestrator, store } = await setup();
      const err = await rejectionOf(orchestrator.runSync('Sync', 'r5', { n: 'x' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect(err.field).to.equal('n');
      expect(await store.get('r5')).to.equal(undefined);
    });

    it('answers a repeated request id with the first result, without running again', async () => {
      const { orchestrator, journal } = await setup();
      const first = await orchestrator.runSync('Sync', 'r6', { n: 1 });
      expect(await orchestrator.runSync('Sync', 'r6', { n: 1 })).to.deep.equal(first);
      expect(journal.calls).to.have.length(3);
    });

    it('runs concurrent duplicates once, and both get the result', async () => {
      const { orchestrator, journal } = await setup({ a: { runMs: 50 } });
      const results = await Promise.all([1, 2, 3].map(() => orchestrator.runSync('Sync', 'dup', { n: 1 })));
      expect(results).to.deep.equal([['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'b', 'c']]);
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('answers a repeated request id of a rolled-back saga with the same abort', async () => {
      const { orchestrator, store } = await setup({ b: { failRuns: Infinity } });
      await rejectionOf(orchestrator.runSync('Sync', 'r7', { n: 1 }));
      await finished(store, 'r7');
      const again = await rejectionOf(orchestrator.runSync('Sync', 'r7', { n: 1 }));
      expect(again).to.be.instanceOf(SagaAbortedError);
      expect(again.failedStep).to.equal('b');
    });

    it('refuses to run an async facade synchronously', async () => {
      const { orchestrator } = await setup();
      expect((await rejectionOf(orchestrator.runSync('Async', 'r8', { n: 1 }))).code).to.equal('FAILED_PRECONDITION');
    });

    it('CancelSaga compensates a running saga, and the caller is answered with the abort', async () => {
      // Step b runs until the saga is cancelled.
      let release = (): void => undefined;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const { orchestrator, store, journal } = await setup({ b: { gate } });
      const call = rejectionOf(orchestrator.runSync('Sync', 'c1', { n: 1 }));
      await waitFor(async () => (await store.get('c1'))?.steps[1].status === 'RUNNING', 10_000, 'step b to run');
      await orchestrator.cancelSaga('c1');
      release();
      expect((await call).code).to.equal('SAGA_ABORTED');
      expect((await finished(store, 'c1')).status).to.equal('COMPENSATED');
      expect(journal.calls).to.not.include('run:c');
    });
  });

  describe('async facade', () => {
    it('returns at once, then moves node to node through the topics to COMPLETED', async () => {
      const { orchestrator, store, journal } = await setup();
      expect(await orchestrator.startAsync('Async', 'a1', { n: 2 })).to.equal('a1');
      // On record when the call returns (a quick broker may have taken it to the end already).
      expect((await store.get('a1'))!.status).to.be.oneOf(['RUNNING', 'COMPLETED']);
      const saga = await finished(store, 'a1');
      expect(saga.status).to.equal('COMPLETED');
      expect(saga.output).to.deep.equal(['a', 'b', 'c']);
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('compensates through the rollback topic when a node fails', async () => {
      const { orchestrator, store, journal } = await setup({ b: { failRuns: Infinity } });
      await orchestrator.startAsync('Async', 'a2', { n: 2 });
      expect((await finished(store, 'a2')).status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'undo:b', 'undo:a']);
    });

    it('schedules retries durably (a timer in the store), not by sleeping in the consumer', async () => {
      const { orchestrator, store, journal } = await setup({ b: { failRuns: 1, retryable: true } }, {
        retry: { maxAttempts: 3, initialBackoffMs: 300, maxBackoffMs: 300, multiplier: 1, jitter: 0 },
      });
      const saved = spyOnSave(store);
      const handled = spyOnHandle(orchestrator);
      await orchestrator.startAsync('Async', 'a3', { n: 2 });
      const saga = await finished(store, 'a3');
      expect(saga.status).to.equal('COMPLETED');
      const [b1, b2] = journal.runAt!.b;
      // The failed attempt left a timer in the store: the backoff after it, not merely "some time".
      const waiting = saved.find((s) => s.requestId === 'a3' && s.steps[1].status === 'RETRYING');
      expect(waiting?.wakeAt, 'a saved RETRYING state with a timer').to.be.a('string');
      expect(Date.parse(waiting!.wakeAt!)).to.be.at.least(b1 + 300);
      expect(b2 - b1).to.be.at.least(290);
      // And the consumer let go of the failed attempt's message before the retry ran.
      const firstB = handled.find(({ message }) => message.topic === 't.b' && message.key === 'a3');
      expect(firstB!.at).to.be.at.most(b2);
    });

    it('ignores a repeated request id', async () => {
      const { orchestrator, store, transport, journal } = await setup();
      const published = spyOnPublish(transport);
      await orchestrator.startAsync('Async', 'a4', { n: 2 });
      await orchestrator.startAsync('Async', 'a4', { n: 2 });
      // The second call published nothing: no message can run the saga again later.
      const starts = () => published.filter((m) => m.key === 'a4' && m.topic === 't.a').length;
      expect(starts()).to.equal(1);
      await finished(store, 'a4');
      expect(starts()).to.equal(1);
      expect(journal.byRequest!.a4).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('skips a step message redelivered while the saga runs (the step still running, then done) instead of running the step twice', async () => {
      // b and c each held until the test lets them go: the redeliveries come while the saga runs.
      let releaseB!: () => void;
      let releaseC!: () => void;
      const gateB = new Promise<void>((resolve) => { releaseB = resolve; });
      const gateC = new Promise<void>((resolve) => { releaseC = resolve; });
      const { orchestrator, store, transport, journal } = await setup({ b: { gate: gateB }, c: { gate: gateC } });
      const published = spyOnPublish(transport);
      const runs = (step: string) => (journal.byRequest?.a5 ?? []).filter((c) => c === `run:${step}`).length;
      /**
       * b's message handled again, as a consumer that gets it while its first delivery is in hand
       * would (handed to the orchestrator: a Kafka consumer would hold it until the first is done).
       * Done once handled, or once it ran b again (it would then wait at b's gate).
       */
      const redeliverB = async (when: string) => {
        const message = published.find((m) => m.topic === 't.b' && m.key === 'a5')!;
        let handled = false;
        let failure: unknown;
        const handling = orchestrator.handle(message).then(() => { handled = true; }, (err: unknown) => { handled = true; failure = err; });
        await waitFor(() => handled || runs('b') > 1, 20_000, `the redelivery ${when} to be handled`);
        expect(runs('b'), `runs of b after its redelivery ${when}`).to.equal(1);
        await handling;
        if (failure !== undefined) throw failure as Error;
      };
      try {
        await orchestrator.startAsync('Async', 'a5', { n: 2 });
        await waitFor(() => runs('b') === 1, 20_000, 'b to run');
        await redeliverB('while b runs');
        releaseB();
        await waitFor(() => runs('c') === 1, 20_000, 'c to run');
        expect((await store.get('a5'))?.status).to.equal('RUNNING');
        await redeliverB('after b, while c runs');
      } finally {
        releaseB();
        releaseC();
      }
      const saga = await finished(store, 'a5');
      expect(saga.status).to.equal('COMPLETED');
      expect(journal.byRequest!.a5).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('skips a step message redelivered after the saga finished', async () => {
      const { orchestrator, store, transport, journal } = await setup();
      const handled = spyOnHandle(orchestrator);
      await orchestrator.startAsync('Async', 'a5b', { n: 2 });
      await finished(store, 'a5b');
      await transport.publish(encodeMessage('t.b', { kind: 'step', requestId: 'a5b', facade: 'Async', version: 1, node: 'b', attempt: 1 }));
      // Handled twice (first delivery and redelivery), run once.
      await waitFor(() => handled.filter(({ message: m }) => m.topic === 't.b' && m.key === 'a5b').length >= 2, 20_000, 'the redelivered message to be handled');
      expect(journal.byRequest!.a5b).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('compensates a saga past its deadline instead of running its next step', async () => {
      const { orchestrator, store, journal } = await setup({ a: { runMs: 150 } }, { asyncDeadlineMs: 100 });
      await orchestrator.startAsync('Async', 'a6', { n: 2 });
      const saga = await finished(store, 'a6');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls).to.not.include('run:c');
    });
  });

  describe('throttled facade', () => {
    it('blocks until the saga, run through the topics, completes', async () => {
      const { orchestrator, store } = await setup();
      expect(await orchestrator.runThrottled('Throttled', 'th1', { n: 1 })).to.deep.equal(['a', 'b', 'c']);
      expect((await store.get('th1'))!.mode).to.equal('throttled');
    });

    it('answers the abort when a node fails', async () => {
      const { orchestrator } = await setup({ c: { failRuns: Infinity } });
      const err = await rejectionOf(orchestrator.runThrottled('Throttled', 'th2', { n: 1 }));
      expect(err).to.be.instanceOf(SagaAbortedError);
      expect(err.failedStep).to.equal('c');
    });

    it('runs at most maxConcurrent at once, queues maxQueue, and refuses the rest with RESOURCE_EXHAUSTED', async () => {
      const { orchestrator } = await setup({ a: { runMs: 100 } }, { throttle: { maxConcurrent: 2, maxQueue: 1 } });
      const calls = [1, 2, 3, 4].map((i) => orchestrator.runThrottled('Throttled', `q${i}`, { n: i }).then(() => 'ok', (e: Error & { code?: string }) => e.code));
      expect(await Promise.all(calls)).to.deep.equal(['ok', 'ok', 'ok', 'RESOURCE_EXHAUSTED']);
    });

    it('compensates on the caller deadline and answers DEADLINE_EXCEEDED', async () => {
      const { orchestrator, store } = await setup({ b: { runMs: 400 } });
      const err = await rejectionOf(orchestrator.runThrottled('Throttled', 'th3', { n: 1 }, { signal: AbortSignal.timeout(100), deadline: new Date(Date.now() + 100) }));
      // Either the caller's wait or the saga's own deadline notices first; the caller sees DEADLINE_EXCEEDED both ways.
      expect(toGrpcError(err).code).to.equal(grpc.status.DEADLINE_EXCEEDED);
      expect((await finished(store, 'th3')).status).to.equal('COMPENSATED');
    });
  });

  describe('recovery', () => {
    async function orphan(store: SagaStore, mode: 'sync' | 'async', requestId: string, succeeded: string[], running?: string, podId = 'dead-pod') {
      const saga = Saga.start({ requestId, facade: mode === 'sync' ? 'Sync' : 'Async', version: 1, mode, input: { n: 1 }, steps: ['a', 'b', 'c'], podId, deadline: new Date(Date.now() + 60_000) });
      for (const s of succeeded) {
        saga.stepStarted(s);
        saga.stepSucceeded(s, { step: s, n: 1 });
      }
      if (running) saga.stepStarted(running);
      await store.create(saga.snapshot());
    }

    it('resumes an async saga whose instance died, from its last recorded step', async () => {
      const store = await backend.store(100);
      await orphan(store, 'async', 'o1', ['a'], 'b');
      const { journal, orchestrator } = await setup({}, {}, store);
      const saga = await finished(store, 'o1');
      expect(saga.status).to.equal('COMPLETED');
      expect(journal.calls).to.deep.equal(['run:b', 'run:c']);
      expect(saga.owner).to.equal(orchestrator.owner);
    });

    it('compensates a sync saga whose caller died with its instance, including the step caught mid-flight', async () => {
      const store = await backend.store(100);
      await orphan(store, 'sync', 'o2', ['a'], 'b');
      const { journal } = await setup({}, {}, store);
      const saga = await finished(store, 'o2');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['undo:b', 'undo:a']);
      expect(journal.undoOutputs!.b).to.equal(undefined);
    });

    it('leaves alone sagas whose owner keeps renewing its lease', async () => {
      const store = await backend.store(100);
      // Two orphans with the same lease; only o3's owner renews it. Once o3-gone is taken over,
      // o3's lease would have run out too, had it not been renewed.
      await orphan(store, 'async', 'o3-gone', [], 'a', 'gone-pod');
      await orphan(store, 'async', 'o3', [], 'a');
      // fire-and-forget: a renewal every 20 ms stands in for the live owner's; each is independent of the last
      const renew = setInterval(() => void store.renewLeases('dead-pod'), 20);
      try {
        const { journal, orchestrator } = await setup({}, {}, store);
        const gone = await finished(store, 'o3-gone');
        expect([gone.status, gone.owner]).to.deep.equal(['COMPLETED', orchestrator.owner]);
        expect((await store.get('o3'))!.owner).to.equal('dead-pod');
        expect(journal.byRequest!.o3).to.equal(undefined);
      } finally {
        clearInterval(renew);
      }
    });
  });

  describe('bad messages', () => {
    const step = (extra: object) => JSON.stringify({ kind: 'step', requestId: 'x', facade: 'Async', version: 1, node: 'a', attempt: 1, input: {}, results: {}, ...extra });
    const cases: [string, string, string, RegExp][] = [
      ['garbage', 't.a', '{not json', /not JSON/],
      ['an unknown facade', 't.a', step({ facade: 'Nope' }), /unknown facade Nope/],
      ['an unknown node', 't.a', step({ node: 'zz' }), /has no node zz/],
      ['a node on the wrong topic', 't.b', step({}), /not bound to topic t.b/],
      ['an unknown saga', 't.a', step({ requestId: 'ghost' }), /unknown saga ghost/],
      ['a rollback naming an unknown node', 'rb.async', JSON.stringify({ kind: 'rollback', requestId: 'x', facade: 'Async', version: 1, failedNode: 'b', error: { code: 'X', message: 'm' }, completed: [{ node: 'q', output: 1 }], input: {} }), /has no node q/],
    ];
    for (const [what, topic, value, reason] of cases) {
      it(`dead-letter ${what} with the reason in a header, and sagas after it still complete`, async () => {
        const { orchestrator, transport, store } = await setup();
        // Keys and ids of this test only: on Kafka, the suite's earlier messages come again (see realBackend).
        const key = `bad-${randomUUID()}`;
        const after = `after-${randomUUID()}`;
        await transport.publish({ topic, key, value, headers: { 'x-request-id': key } });
        await orchestrator.startAsync('Async', after, { n: 1 });
        expect((await finished(store, after)).status).to.equal('COMPLETED');
        const dead = await waitFor(async () => (await backend.deadLetters(transport, key))[0], 20_000, 'dead letter');
        expect(dead.value).to.equal(value);
        expect(dead.headers['x-dead-letter-reason']).to.match(reason);
        expect(dead.headers['x-original-topic']).to.equal(topic);
      });
    }

    it('retries a handler that fails for a non-retryable reason, then dead-letters the message', async () => {
      const { transport, store } = await setup();
      store.get = async (): Promise<SagaSnapshot | undefined> => { throw new Error('bug'); };
      const requestId = `x-${randomUUID()}`;
      await transport.publish(encodeMessage('t.a', { kind: 'step', requestId, facade: 'Async', version: 1, node: 'a', attempt: 1 }));
      const dead = await waitFor(async () => (await backend.deadLetters(transport, requestId))[0], 20_000, 'dead letter');
      expect(dead.headers['x-dead-letter-reason']).to.equal(`handler failed after ${backend.handlerAttempts} attempts: bug`);
    });
  });

  it('refuses new sagas once stopped', async () => {
    const { orchestrator } = await setup();
    orchestrator.stop();
    expect((await rejectionOf(orchestrator.runSync('Sync', 's1', { n: 1 }))).code).to.equal('UNAVAILABLE');
  });
});
}
