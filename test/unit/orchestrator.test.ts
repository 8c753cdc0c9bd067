import { expect } from 'chai';
import { AlreadyExistsError, SagaAbortedError, ValidationError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import { encodeMessage } from '../../src/engine/messages';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaSnapshot } from '../../src/engine/saga';
import { MemorySagaStore } from '../../src/store/memory-store';
import { MemoryTransport } from '../../src/transport/memory-transport';
import type { TopicSpec } from '../../topics/topics';
import { fakeFacade, fakeStep, type FakeStepOptions, type Journal } from '../helpers/fake-facade';
import { rejectionOf, waitFor } from '../helpers/wait';

const TOPICS: TopicSpec[] = ['t.a', 't.b', 't.c', 'rb.sync', 'rb.async'].map((name) => ({ name, partitions: 1, deadLetter: 'dlq' }));
TOPICS.push({ name: 'dlq', partitions: 1 });

interface Setup { orchestrator: Orchestrator; transport: MemoryTransport; store: MemorySagaStore; journal: Journal }

async function setup(opts: Record<string, FakeStepOptions> = {}, maxAttempts = 3): Promise<Setup> {
  const journal: Journal = { calls: [] };
  const registry = new FacadeRegistry()
    .register(fakeFacade('Sync', 'sync', ['a', 'b', 'c'].map((n) => fakeStep(n, journal, opts[n])), 'rb.sync'))
    .register(fakeFacade('Async', 'async', ['a', 'b', 'c'].map((n) => fakeStep(n, journal, { ...opts[n], topic: `t.${n}` })), 'rb.async'));
  const transport = new MemoryTransport(TOPICS, silentLogger, { attempts: 2, backoffMs: 1 });
  const store = new MemorySagaStore();
  const orchestrator = new Orchestrator({
    registry, store, transport, logger: silentLogger, podId: 'test',
    options: { stepTimeoutMs: 1_000, compensation: { maxAttempts, backoffMs: 1 } },
  });
  await orchestrator.start();
  return { orchestrator, transport, store, journal };
}

const finished = (store: MemorySagaStore, id: string) =>
  waitFor(async () => {
    const s = await store.get(id);
    return s && ['COMPLETED', 'COMPENSATED', 'FAILED'].includes(s.status) ? s : undefined;
  }, 3_000, `saga ${id} to finish`);

describe('Orchestrator on the in-process transport', () => {
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

    it('on a failed node answers SagaAbortedError naming it, then compensates completed steps in reverse', async () => {
      const { orchestrator, store, journal } = await setup({ c: { failRuns: Infinity } });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'r2', { n: 1 }));
      expect(err).to.be.instanceOf(SagaAbortedError);
      expect(err.failedStep).to.equal('c');
      expect(err.message).to.match(/aborted at node c: c refused/);
      const saga = await finished(store, 'r2');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c', 'undo:b:b', 'undo:a:a']);
      expect(saga.steps.map((s) => s.status)).to.deep.equal(['COMPENSATED', 'COMPENSATED', 'FAILED']);
      expect(saga.error).to.equal('c: c refused');
    });

    it('retries a failing compensation and records every attempt', async () => {
      const { orchestrator, store } = await setup({ b: { failRuns: Infinity }, a: { failCompensations: 2 } });
      await orchestrator.runSync('Sync', 'r3', { n: 1 }).catch(() => undefined);
      const saga = await finished(store, 'r3');
      expect(saga.status).to.equal('COMPENSATED');
      expect(saga.steps[0].compensationAttempts).to.equal(3);
      expect(saga.history.filter((e) => e.type === 'COMPENSATION_FAILED')).to.have.length(2);
    });

    it('marks the saga FAILED, error kept, when a compensation runs out of attempts; earlier steps are left for a retry', async () => {
      const { orchestrator, store, journal } = await setup({ c: { failRuns: Infinity }, b: { failCompensations: Infinity } }, 2);
      await orchestrator.runSync('Sync', 'r4', { n: 1 }).catch(() => undefined);
      const saga = await finished(store, 'r4');
      expect(saga.status).to.equal('FAILED');
      expect(saga.error).to.equal('compensation of b failed after 2 attempts: b compensation broke');
      expect(saga.steps.map((s) => s.status)).to.deep.equal(['SUCCEEDED', 'COMPENSATION_FAILED', 'FAILED']);
      expect(journal.calls.filter((c) => c.startsWith('undo'))).to.deep.equal(['undo:b:b', 'undo:b:b']);
    });

    it('rejects bad input with ValidationError and records no saga', async () => {
      const { orchestrator, store } = await setup();
      const err = await rejectionOf(orchestrator.runSync('Sync', 'r5', { n: 'x' }));
      expect(err).to.be.instanceOf(ValidationError);
      expect(err.field).to.equal('n');
      expect(await store.get('r5')).to.equal(undefined);
    });

    it('refuses a request id that is already taken', async () => {
      const { orchestrator, journal } = await setup();
      await orchestrator.runSync('Sync', 'r6', { n: 1 });
      const err = await rejectionOf(orchestrator.runSync('Sync', 'r6', { n: 1 }));
      expect(err).to.be.instanceOf(AlreadyExistsError);
      expect(journal.calls).to.have.length(3);
    });

    it('refuses to run an async facade synchronously', async () => {
      const { orchestrator } = await setup();
      const err = await rejectionOf(orchestrator.runSync('Async', 'r7', { n: 1 }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
    });
  });

  describe('async facade', () => {
    it('returns at once, then moves node to node through the topics to COMPLETED', async () => {
      const { orchestrator, store, journal } = await setup();
      expect(await orchestrator.startAsync('Async', 'a1', { n: 2 })).to.equal('a1');
      expect((await store.get('a1'))!.status).to.equal('RUNNING');
      const saga = await finished(store, 'a1');
      expect(saga.status).to.equal('COMPLETED');
      expect(saga.output).to.deep.equal(['a', 'b', 'c']);
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
    });

    it('compensates through the rollback topic when a node fails', async () => {
      const { orchestrator, store, journal } = await setup({ b: { failRuns: Infinity } });
      await orchestrator.startAsync('Async', 'a2', { n: 2 });
      const saga = await finished(store, 'a2');
      expect(saga.status).to.equal('COMPENSATED');
      expect(journal.calls).to.deep.equal(['run:a', 'run:b', 'undo:a:a']);
    });

    it('skips a redelivered step message instead of running the step twice', async () => {
      const { orchestrator, store, transport, journal } = await setup();
      await orchestrator.startAsync('Async', 'a3', { n: 2 });
      await finished(store, 'a3');
      await transport.publish(encodeMessage('t.b', { kind: 'step', requestId: 'a3', facade: 'Async', version: 1, node: 'b', attempt: 1, input: { n: 2 }, results: {} }));
      await transport.close();
      expect(journal.calls.filter((c) => c === 'run:b')).to.have.length(1);
    });
  });

  describe('bad messages', () => {
    const cases: [string, string, string, RegExp][] = [
      ['garbage', 't.a', '{not json', /not JSON/],
      ['an unknown facade', 't.a', JSON.stringify({ kind: 'step', requestId: 'x', facade: 'Nope', version: 1, node: 'a', attempt: 1, input: {}, results: {} }), /unknown facade Nope/],
      ['an unknown node', 't.a', JSON.stringify({ kind: 'step', requestId: 'x', facade: 'Async', version: 1, node: 'zz', attempt: 1, input: {}, results: {} }), /has no node zz/],
      ['a node on the wrong topic', 't.b', JSON.stringify({ kind: 'step', requestId: 'x', facade: 'Async', version: 1, node: 'a', attempt: 1, input: {}, results: {} }), /not bound to topic t.b/],
      ['a rollback naming an unknown node', 'rb.async', JSON.stringify({ kind: 'rollback', requestId: 'x', facade: 'Async', version: 1, failedNode: 'b', error: { code: 'X', message: 'm' }, completed: [{ node: 'q', output: 1 }], input: {} }), /has no node q/],
    ];
    for (const [what, topic, value, reason] of cases) {
      it(`dead-letter ${what} with the reason in a header, and sagas after it still complete`, async () => {
        const { orchestrator, transport, store } = await setup();
        await transport.publish({ topic, key: 'bad', value, headers: { 'x-request-id': 'bad' } });
        await orchestrator.startAsync('Async', 'after', { n: 1 });
        expect((await finished(store, 'after')).status).to.equal('COMPLETED');
        const dead = await waitFor(() => transport.undelivered('dlq')[0], 2_000, 'dead letter');
        expect(dead.value).to.equal(value);
        expect(dead.headers['x-dead-letter-reason']).to.match(reason);
        expect(dead.headers['x-original-topic']).to.equal(topic);
      });
    }

    it('retries a handler that fails for another reason, then dead-letters the message', async () => {
      const { transport, store } = await setup();
      store.get = async (): Promise<SagaSnapshot | undefined> => { throw new Error('store down'); };
      await transport.publish(encodeMessage('t.a', { kind: 'step', requestId: 'x', facade: 'Async', version: 1, node: 'a', attempt: 1, input: { n: 1 }, results: {} }));
      const dead = await waitFor(() => transport.undelivered('dlq')[0], 2_000, 'dead letter');
      expect(dead.headers['x-dead-letter-reason']).to.equal('handler failed after 2 attempts: store down');
    });
  });

  it('refuses new sagas once stopped', async () => {
    const { orchestrator } = await setup();
    orchestrator.stop();
    const err = await rejectionOf(orchestrator.runSync('Sync', 's1', { n: 1 }));
    expect(err.code).to.equal('UNAVAILABLE');
  });
});
