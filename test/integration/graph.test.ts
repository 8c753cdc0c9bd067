import { expect } from 'chai';
import { StepError, ValidationError } from '../../src/engine/errors';
import type { FacadeDefinition, FacadeMode, NodeDefinition, StepDefinition } from '../../src/engine/facade';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator, type EngineOptions } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaSnapshot } from '../../src/engine/saga';
import type { SagaStore } from '../../src/engine/store';
import type { Transport } from '../../src/engine/transport';
import type { TopicSpec } from '../../topics/topics';
import { memoryBackendOf, realBackendOf, type Backend } from '../helpers/backends';
import { rejectionOf, waitFor } from '../helpers/wait';

const TOPIC_NAMES = ['g.x', 'g.y', 'g.z', 'g.w', 'g.v', 'g.rb', 'g.ext', 'g.events', 'g.replies', 'outcomes'];
const TOPICS: TopicSpec[] = TOPIC_NAMES.map((name) => ({ name, partitions: 2, deadLetter: 'dlq' }));
TOPICS.push({ name: 'dlq', partitions: 1 });

const FAST: Partial<EngineOptions> = {
  stepTimeoutMs: 2_000,
  retry: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 100, multiplier: 2, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 50,
  timerPollMs: 20,
  heartbeatMs: 50,
  outcomePollMs: 50,
};

type In = { n: number; timeoutMs?: number; route?: string; loops?: number };

/** What the fake nodes did, with when: "run:x", "undo:x#2". */
class Log {
  readonly calls: string[] = [];
  readonly spans = new Map<string, { start: number; end: number }>();
  readonly undone = new Map<string, unknown>();

  step(name: string, opts: { ms?: number; fail?: boolean; topic?: string; after?: string[]; output?: (ctx: { input: In; results: Record<string, unknown>; visit: number }) => unknown; compensate?: boolean } = {}): StepDefinition<In> {
    return {
      name,
      topic: opts.topic,
      after: opts.after,
      retry: { maxAttempts: 1 },
      run: async (ctx) => {
        const key = ctx.visit === 1 ? name : `${name}#${ctx.visit}`;
        this.calls.push(`run:${key}`);
        const start = Date.now();
        try {
          if (opts.ms) {
            await new Promise<void>((resolve, reject) => {
              const t = setTimeout(resolve, opts.ms);
              ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('aborted')); }, { once: true });
            });
          }
        } finally {
          this.spans.set(key, { start, end: Date.now() });
        }
        if (opts.fail) throw new StepError('FAILED_PRECONDITION', `${name} refused`, false);
        return opts.output ? opts.output(ctx) : { node: name, visit: ctx.visit };
      },
      ...(opts.compensate === false ? {} : {
        compensate: async (ctx: { visit: number; output: unknown }) => {
          const key = ctx.visit === 1 ? name : `${name}#${ctx.visit}`;
          const start = Date.now();
          this.calls.push(`undo:${key}`);
          this.undone.set(key, ctx.output);
          await new Promise((r) => setTimeout(r, 60));
          this.spans.set(`undo:${key}`, { start, end: Date.now() });
        },
      }),
    };
  }
}

function facade(name: string, mode: FacadeMode, nodes: NodeDefinition<In>[]): FacadeDefinition<In, Record<string, unknown>> {
  return {
    name, version: 1, mode, nodes, rollbackTopic: 'g.rb',
    parseInput(raw) {
      const input = raw as In;
      if (typeof input?.n !== 'number') throw new ValidationError('n', 'must be a number');
      return input;
    },
    result: (results) => results,
  };
}

const overlap = (a: { start: number; end: number }, b: { start: number; end: number }) => a.start < b.end && b.start < a.end;
const statusOf = (s: SagaSnapshot, key: string) => s.steps.find((v) => v.name === key)?.status;

for (const make of [() => memoryBackendOf(TOPICS), () => realBackendOf(TOPICS)]) {
  describe(`Flow graphs (${make().name})`, function () {
    this.timeout(60_000);
    let backend: Backend;
    let store: SagaStore;
    let transport: Transport;
    let orchestrator: Orchestrator;
    const running: Orchestrator[] = [];

    before(() => { backend = make(); });
    after(() => backend.close());
    afterEach(async () => {
      for (const o of running.splice(0)) await o.shutdown();
      await backend.cleanup();
    });

    async function start(defs: FacadeDefinition<In, unknown>[], options: Partial<EngineOptions> = {}, again = false): Promise<void> {
      // again: a new process (same pod id, its own transport) on the same store, as after a deployment.
      if (!again) store = await backend.store(1_000);
      transport = await backend.transport();
      const registry = new FacadeRegistry();
      for (const d of defs) registry.register(d);
      orchestrator = new Orchestrator({
        registry, store, transport, logger: silentLogger, podId: 'g', outcomeTopic: 'outcomes', eventTopic: 'g.events', replyTopic: 'g.replies',
        options: { ...FAST, ...options },
      });
      await orchestrator.start();
      running.push(orchestrator);
    }

    const ended = (id: string) => waitFor(async () => {
      const s = await store.get(id);
      return s && ['COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED'].includes(s.status) ? s : undefined;
    }, 30_000, `saga ${id} to end`);

    const waitingOn = (id: string, key: string) => waitFor(async () => {
      const s = await store.get(id);
      return s && statusOf(s, key) === 'WAITING' ? s : undefined;
    }, 30_000, `${key} of ${id} to wait`);

    for (const mode of ['sync', 'async'] as const) {
      const t = (name: string) => (mode === 'async' ? `g.${name}` : undefined);

      it(`${mode}: runs independent steps at the same time, and the one after both gets both outputs (fan-out, fan-in)`, async () => {
        const log = new Log();
        await start([facade('Fan', mode, [
          log.step('x', { ms: 300, topic: t('x') }),
          log.step('y', { ms: 300, topic: t('y') }),
          log.step('z', { topic: t('z'), after: ['x', 'y'], output: (ctx) => ({ saw: Object.keys(ctx.results).sort() }) }),
        ])]);
        await orchestrator.startSaga('Fan', `fan-${mode}`, { n: 1 });
        const saga = await ended(`fan-${mode}`);
        expect(saga.status).to.equal('COMPLETED');
        expect(saga.output).to.deep.include({ z: { saw: ['x', 'y'] } });
        expect(overlap(log.spans.get('x')!, log.spans.get('y')!), 'x and y overlap').to.equal(true);
        expect(log.spans.get('z')!.start).to.be.at.least(Math.max(log.spans.get('x')!.end, log.spans.get('y')!.end));
      });

      it(`${mode}: a branch runs the node it picks and marks the other SKIPPED`, async () => {
        const log = new Log();
        await start([facade('Branch', mode, [
          { ...log.step('check', { topic: t('x'), output: (ctx) => ({ route: ctx.input.route }) }), branches: ['left', 'right'], next: (out) => (out as { route: string }).route },
          log.step('left', { topic: t('y') }),
          log.step('right', { topic: t('z') }),
        ])]);
        await orchestrator.startSaga('Branch', `br-${mode}`, { n: 1, route: 'right' });
        const saga = await ended(`br-${mode}`);
        expect(saga.status).to.equal('COMPLETED');
        expect(log.calls).to.deep.equal(['run:check', 'run:right']);
        expect(statusOf(saga, 'left')).to.equal('SKIPPED');
        const view = orchestrator.describeSaga(saga)!;
        expect(view.mermaid).to.match(/class n1 skipped/);
        expect(view.mermaid).to.match(/class n2 done/);
      });

      it(`${mode}: a loop visits a node again as a new visit, and a loop past its visit limit fails naming the node`, async () => {
        const log = new Log();
        const loop = (name: string, limit?: number) => facade(name, mode, [
          { ...log.step('count', { topic: t('x') }), branches: ['count'], maxVisits: limit, next: (_out, ctx) => (ctx.visit < (ctx.input).loops! ? 'count' : undefined) },
        ]);
        await start([loop('Loop'), loop('Spin', 5)]);
        await orchestrator.startSaga('Loop', `loop-${mode}`, { n: 1, loops: 3 });
        const saga = await ended(`loop-${mode}`);
        expect(saga.status).to.equal('COMPLETED');
        expect(saga.steps.map((s) => [s.name, s.status])).to.deep.equal([['count', 'SUCCEEDED'], ['count#2', 'SUCCEEDED'], ['count#3', 'SUCCEEDED']]);
        expect(saga.output).to.deep.equal({ count: { node: 'count', visit: 3 } });
        expect(orchestrator.describeSaga(saga)!.nodes[0].visits.map((v) => v.visit)).to.deep.equal([1, 2, 3]);

        await orchestrator.startSaga('Spin', `spin-${mode}`, { n: 1, loops: 1_000 });
        const spun = await ended(`spin-${mode}`);
        expect(spun.status).to.equal('COMPENSATED');
        expect(spun.error).to.match(/node count visited more than 5 times/);
        // Every visit that ran is undone, newest first.
        expect(log.calls.filter((c) => c.startsWith('undo:'))).to.deep.equal(['undo:count#5', 'undo:count#4', 'undo:count#3', 'undo:count#2', 'undo:count']);
      });

      it(`${mode}: a loop back to a node runs what comes after it again only once its new visit is done`, async () => {
        const log = new Log();
        await start([facade('Redo', mode, [
          log.step('a', { topic: t('x') }),
          { ...log.step('b', { topic: t('y'), after: ['a'], output: (ctx) => ({ sawA: (ctx.results.a as { visit: number }).visit }) }),
            branches: ['a'], next: (out) => ((out as { sawA: number }).sawA < 2 ? 'a' : undefined) },
        ])]);
        await orchestrator.startSaga('Redo', `redo-${mode}`, { n: 1 });
        const saga = await ended(`redo-${mode}`);
        expect(saga.status).to.equal('COMPLETED');
        expect(saga.steps.map((v) => [v.name, v.status, v.output])).to.have.deep.members([
          ['a', 'SUCCEEDED', { node: 'a', visit: 1 }], ['b', 'SUCCEEDED', { sawA: 1 }], ['a#2', 'SUCCEEDED', { node: 'a', visit: 2 }], ['b#2', 'SUCCEEDED', { sawA: 2 }],
        ]);
        expect(log.spans.get('b#2')!.start).to.be.at.least(log.spans.get('a#2')!.end);
      });

      it(`${mode}: a wait's output is the event's payload; without the event it times out and the saga is compensated`, async () => {
        const log = new Log();
        await start([facade('Approve', mode, [
          log.step('ask', { topic: t('x') }),
          { kind: 'wait', name: 'approval', after: ['ask'], events: ['approve'], timeoutMs: (input) => input.timeoutMs },
          log.step('ship', { topic: t('y'), after: ['approval'], output: (ctx) => ({ approvedBy: (ctx.results.approval as { by: string }).by }) }),
        ])]);
        await orchestrator.startSaga('Approve', `ok-${mode}`, { n: 1, timeoutMs: 60_000 });
        const parked = await waitingOn(`ok-${mode}`, 'approval');
        expect(orchestrator.describeSaga(parked)!.waiting).to.deep.equal([{ node: 'approval', events: ['approve'], until: statusOf(parked, 'approval') && parked.steps[1].wakeAt }]);
        await orchestrator.sendEvent(`ok-${mode}`, 'approve', { by: 'ann' });
        const done = await ended(`ok-${mode}`);
        expect(done.status).to.equal('COMPLETED');
        expect(done.output).to.deep.include({ approval: { by: 'ann' }, ship: { approvedBy: 'ann' } });

        await orchestrator.startSaga('Approve', `late-${mode}`, { n: 1, timeoutMs: 200 });
        const late = await ended(`late-${mode}`);
        expect(late.status).to.equal('COMPENSATED');
        expect(late.errorCode).to.equal('DEADLINE_EXCEEDED');
        expect(late.error).to.match(/approval: expired, no approve event before/);
        expect(late.history.some((e) => e.type === 'STEP_FAILED' && e.step === 'approval' && /expired/.test(e.detail ?? ''))).to.equal(true);
        expect(log.calls).to.include('undo:ask');
        // The saga is over: an event for it is refused.
        const refused = await rejectionOf(orchestrator.sendEvent(`late-${mode}`, 'approve', { by: 'bob' }));
        expect(refused.code).to.equal('FAILED_PRECONDITION');
      });

      for (const won of ['yes', 'no', 'timeout'] as const) {
        it(`${mode}: a race won by ${won} picks its branch`, async () => {
          const log = new Log();
          await start([facade('Race', mode, [
            { kind: 'wait', name: 'race', events: ['yes', 'no'], timeoutMs: (input) => input.timeoutMs, branches: ['accept', 'reject', 'expire'],
              next: (out) => ({ yes: 'accept', no: 'reject', timeout: 'expire' })[(out as { event: string }).event] },
            log.step('accept', { topic: t('x') }),
            log.step('reject', { topic: t('y') }),
            log.step('expire', { topic: t('z') }),
          ])]);
          const id = `race-${won}-${mode}`;
          await orchestrator.startSaga('Race', id, { n: 1, timeoutMs: won === 'timeout' ? 150 : 60_000 });
          if (won !== 'timeout') {
            await waitingOn(id, 'race');
            await orchestrator.sendEvent(id, won, { from: 'test' });
          }
          const saga = await ended(id);
          expect(saga.status).to.equal('COMPLETED');
          const picked = { yes: 'accept', no: 'reject', timeout: 'expire' }[won];
          expect(log.calls).to.deep.equal([`run:${picked}`]);
          expect(saga.output).to.deep.include({ race: won === 'timeout' ? { event: 'timeout' } : { event: won, payload: { from: 'test' } } });
          for (const other of ['accept', 'reject', 'expire'].filter((n) => n !== picked)) expect(statusOf(saga, other)).to.equal('SKIPPED');
        });
      }

      it(`${mode}: a sleep is a durable delay`, async () => {
        const log = new Log();
        await start([facade('Nap', mode, [
          log.step('before', { topic: t('x') }),
          { kind: 'sleep', name: 'nap', after: ['before'], delayMs: 400 },
          log.step('after', { topic: t('y'), after: ['nap'] }),
        ])]);
        await orchestrator.startSaga('Nap', `nap-${mode}`, { n: 1 });
        const saga = await ended(`nap-${mode}`);
        expect(saga.status).to.equal('COMPLETED');
        expect(log.spans.get('after')!.start - log.spans.get('before')!.end).to.be.at.least(400);
      });

      it(`${mode}: an event that arrives while the saga is busy is kept and taken by the wait; a repeated idempotency key has no effect`, async () => {
        const log = new Log();
        await start([facade('Busy', mode, [
          log.step('slow', { ms: 500, topic: t('x') }),
          { kind: 'wait', name: 'go', after: ['slow'], events: ['go'] },
        ])]);
        const id = `busy-${mode}`;
        await orchestrator.startSaga('Busy', id, { n: 1 });
        await waitFor(async () => (await store.get(id))?.steps[0].status === 'RUNNING', 10_000, 'slow to run');
        await orchestrator.sendEvent(id, 'go', { seq: 1 }, 'k1');
        await orchestrator.sendEvent(id, 'go', { seq: 2 }, 'k1');
        const saga = await ended(id);
        expect(saga.status).to.equal('COMPLETED');
        expect(saga.output).to.deep.include({ go: { seq: 1 } });
        expect(saga.history.filter((e) => e.type === 'EVENT_RECEIVED')).to.have.length(1);
        const unknown = await rejectionOf(orchestrator.sendEvent(id, 'stop', {}));
        expect(unknown.code).to.equal('INVALID_ARGUMENT');
        expect(unknown.message).to.match(/never waits for stop; it accepts go/);
      });

      it(`${mode}: on a failure, running siblings are stopped, then everything that ran is compensated in reverse dependency order`, async () => {
        const log = new Log();
        await start([facade('Undo', mode, [
          log.step('x', { topic: t('x') }),
          log.step('y', { topic: t('y') }),
          log.step('z', { topic: t('z'), after: ['x', 'y'] }),
          log.step('w', { topic: t('w'), after: ['z'], fail: true, ms: 100, compensate: false }),
          log.step('v', { topic: t('v'), after: ['z'], ms: mode === 'sync' ? 20_000 : 300 }),
        ])]);
        await orchestrator.startSaga('Undo', `undo-${mode}`, { n: 1 });
        const saga = await waitFor(async () => {
          const s = await store.get(`undo-${mode}`);
          return s?.status === 'COMPENSATED' ? s : undefined;
        }, 30_000, 'compensated');
        const undos = log.calls.filter((c) => c.startsWith('undo:'));
        // v (a sibling of the failed w) is undone first, then z, then x and y together.
        expect(undos.slice(0, 2)).to.deep.equal(['undo:v', 'undo:z']);
        expect(undos.slice(2).sort()).to.deep.equal(['undo:x', 'undo:y']);
        expect(overlap(log.spans.get('undo:x')!, log.spans.get('undo:y')!), 'x and y undone together').to.equal(true);
        expect(log.spans.get('undo:z')!.end).to.be.at.most(log.spans.get('undo:x')!.start);
        // v (running when w failed) is undone only once its run is over, knowing what it did: aborted
        // in-process (no output); on Kafka, where nothing can stop it, finished, with its output.
        const v = log.spans.get('v')!;
        expect(log.spans.get('undo:v')!.start).to.be.at.least(v.end);
        if (mode === 'sync') expect(v.end - v.start, 'v was aborted').to.be.below(20_000);
        else expect(log.undone.get('v')).to.deep.equal({ node: 'v', visit: 1 });
        expect(statusOf(saga, 'w')).to.equal('FAILED');
      });
    }

    it('a step message that could not be published is published again from a timer, as a new attempt', async () => {
      const log = new Log();
      await start([facade('Flaky', 'async', [log.step('x', { topic: 'g.x' }), log.step('y', { topic: 'g.y', after: ['x'] })])]);
      const publish = transport.publish.bind(transport);
      let refused = 0;
      transport.publish = async (m) => {
        if (m.topic === 'g.y' && refused++ === 0) throw new Error('broker away');
        return publish(m);
      };
      await orchestrator.startSaga('Flaky', 'flaky-1', { n: 1 });
      const saga = await ended('flaky-1');
      expect(saga.status).to.equal('COMPLETED');
      expect(refused).to.be.at.least(2);
      expect(log.calls).to.deep.equal(['run:x', 'run:y']);
      expect(saga.steps.find((v) => v.name === 'y')!.attempts).to.equal(2);
    });

    describe('external steps', () => {
      /** A worker on its own consumer group: answers each command on the reply topic, as `answer` says. */
      async function worker(answer: (cmd: { requestId: string; step: string; visit: number; payload: unknown; idempotencyKey: string }) => object | undefined): Promise<string[]> {
        const seen: string[] = [];
        // In-process, the worker shares the orchestrator's bus; on Kafka it is another consumer group.
        const w = backend.name.includes('Kafka') ? await backend.transport() : transport;
        await w.subscribe(['g.ext'], async (m) => {
          const cmd = JSON.parse(m.value) as { requestId: string; step: string; visit: number; payload: unknown; idempotencyKey: string; replyTopic: string };
          seen.push(cmd.idempotencyKey);
          const reply = answer(cmd);
          if (reply) await w.publish({ topic: cmd.replyTopic, key: cmd.requestId, value: JSON.stringify({ step: cmd.step, visit: cmd.visit, ...reply }), headers: {} });
        });
        return seen;
      }

      const ext = (log: Log) => facade('Ext', 'async', [
        { kind: 'external', name: 'make', topic: 'g.ext', timeoutMs: (input) => input.timeoutMs, command: (ctx) => ({ n: ctx.input.n }),
          compensate: async (ctx) => { log.calls.push('undo:make'); log.undone.set('make', ctx.output); } },
        log.step('use', { topic: 'g.x', after: ['make'], output: (ctx) => ({ got: ctx.results.make }) }),
      ]);

      it('succeeds when its worker replies on the reply topic with the output', async () => {
        const log = new Log();
        await start([ext(log)]);
        const seen = await worker((cmd) => ({ output: { madeFor: (cmd.payload as { n: number }).n } }));
        await orchestrator.startSaga('Ext', 'ext-ok', { n: 7, timeoutMs: 60_000 });
        const saga = await ended('ext-ok');
        expect(saga.status).to.equal('COMPLETED');
        expect(saga.output).to.deep.include({ make: { madeFor: 7 }, use: { got: { madeFor: 7 } } });
        expect(seen).to.deep.equal(['ext-ok:make']);
      });

      it('fails when its worker reports a failure (FailStep), and the saga is compensated', async () => {
        const log = new Log();
        await start([ext(log)]);
        await worker(() => undefined);
        await orchestrator.startSaga('Ext', 'ext-fail', { n: 1, timeoutMs: 60_000 });
        await waitingOn('ext-fail', 'make');
        await orchestrator.failStep('ext-fail', 'make', 'out of steel');
        const saga = await ended('ext-fail');
        expect(saga.status).to.equal('COMPENSATED');
        expect(saga.error).to.match(/out of steel/);
        expect(log.calls).to.deep.equal(['undo:make']);
        expect(log.undone.get('make')).to.equal(undefined);
        // The visit has its answer (FailStep): a late CompleteStep for it is OK and changes nothing, also after the end (issue 16 §1.3).
        await orchestrator.completeStep('ext-fail', 'make', {});
        expect(await store.get('ext-fail')).to.deep.include({ status: 'COMPENSATED', revision: saga.revision });
      });

      it('fails with DEADLINE_EXCEEDED when no reply comes in time', async () => {
        const log = new Log();
        await start([ext(log)]);
        await orchestrator.startSaga('Ext', 'ext-late', { n: 1, timeoutMs: 200 });
        const saga = await ended('ext-late');
        expect(saga.status).to.equal('COMPENSATED');
        expect(saga.errorCode).to.equal('DEADLINE_EXCEEDED');
        expect(saga.error).to.match(/make: no reply before/);
      });

      it('CompleteStep over the API works as the reply topic does', async () => {
        const log = new Log();
        await start([ext(log)]);
        await orchestrator.startSaga('Ext', 'ext-api', { n: 2, timeoutMs: 60_000 });
        await waitingOn('ext-api', 'make');
        await orchestrator.completeStep('ext-api', 'make', { by: 'api' });
        await orchestrator.completeStep('ext-api', 'make', { by: 'again' }); // told twice: the first answer stands
        const saga = await ended('ext-api');
        expect(saga.output).to.deep.include({ make: { by: 'api' } });
      });
    });

    it('the events topic moves a saga as SendEvent does, and dead-letters what can never apply, with the reason', async () => {
      const log = new Log();
      await start([facade('Topic', 'async', [{ kind: 'wait', name: 'go', events: ['go'] }, log.step('after', { topic: 'g.x', after: ['go'] })])]);
      await orchestrator.startSaga('Topic', 'topic-1', { n: 1 });
      await waitingOn('topic-1', 'go');
      const event = (key: string, value: string) => transport.publish({ topic: 'g.events', key, value, headers: {} });
      await event('topic-1', JSON.stringify({ event: 'go', payload: { via: 'kafka' }, idempotencyKey: 'e1' }));
      const saga = await ended('topic-1');
      expect(saga.status).to.equal('COMPLETED');
      expect(saga.output).to.deep.include({ go: { via: 'kafka' } });

      await event('topic-bad-json', '{not json');
      await event('topic-no-saga', JSON.stringify({ event: 'go', payload: {} }));
      await event('topic-1', JSON.stringify({ event: 'go', payload: {}, idempotencyKey: 'late' }));
      const reason = async (key: string, match: RegExp) => {
        const dead = await waitFor(async () => (await backend.deadLetters(transport, key)).find((m) => match.test(m.headers['x-dead-letter-reason'] ?? '')), 30_000, `dead letter ${key}`);
        expect(dead.topic).to.equal('dlq');
      };
      await reason('topic-bad-json', /not JSON/);
      await reason('topic-no-saga', /saga topic-no-saga not found/);
      await reason('topic-1', /FAILED_PRECONDITION: saga topic-1 is COMPLETED/);
    });

    describe('long-lived flows', () => {
      const approval = (log: Log, version: number, extra: Partial<FacadeDefinition<In, unknown>> = {}) => ({
        ...facade('Order', 'async', [
          log.step('checkout', { topic: 'g.x' }),
          { kind: 'wait' as const, name: 'paid', after: ['checkout'], events: ['paid'] },
          ...(version === 2 ? [log.step('pack', { topic: 'g.y', after: ['paid'] })] : []),
          { kind: 'wait' as const, name: 'shipped', after: [version === 2 ? 'pack' : 'paid'], events: ['shipped'] },
        ]),
        version,
        ...extra,
      });

      it('a saga keeps the version it started on, also in a new process that has a newer one', async () => {
        const log = new Log();
        await start([approval(log, 1)]);
        await orchestrator.startSaga('Order', 'v-old', { n: 1 });
        await waitingOn('v-old', 'paid');
        // A deployment: the new process has versions 1 and 2 (same pod id, same store).
        await orchestrator.shutdown();
        await start([approval(log, 1), approval(log, 2)], {}, true);
        await orchestrator.startSaga('Order', 'v-new', { n: 1 });
        expect((await store.get('v-new'))!.version).to.equal(2);
        for (const id of ['v-old', 'v-new']) await orchestrator.sendEvent(id, 'paid', {});
        await waitingOn('v-old', 'shipped');
        await waitingOn('v-new', 'shipped');
        for (const id of ['v-old', 'v-new']) await orchestrator.sendEvent(id, 'shipped', {});
        const [old, fresh] = [await ended('v-old'), await ended('v-new')];
        expect([old.status, old.version, old.steps.map((v) => v.name)]).to.deep.equal(['COMPLETED', 1, ['checkout', 'paid', 'shipped']]);
        expect([fresh.status, fresh.version, fresh.steps.map((v) => v.name)]).to.deep.equal(['COMPLETED', 2, ['checkout', 'paid', 'pack', 'shipped']]);
        expect(log.calls.filter((c) => c === 'run:pack')).to.have.length(1);
        const named = await rejectionOf(orchestrator.startSaga('Order', 'v-3', { n: 1 }, 3));
        expect(named.message).to.match(/facade Order version 3 .*has versions 1, 2/);
      });

      it('a version whose graph changed without a new number is refused at start-up, naming the first difference', async () => {
        const log = new Log();
        await start([approval(log, 1)]);
        await orchestrator.startSaga('Order', 'fp-1', { n: 1 });
        const changed = { ...approval(log, 2), version: 1 };
        const registry = new FacadeRegistry().register(changed);
        const next = new Orchestrator({ registry, store, transport, logger: silentLogger, podId: 'g', outcomeTopic: 'outcomes', options: FAST });
        const refused = await rejectionOf(next.start());
        expect(refused.message).to.match(/facade Order version 1 differs from the graph stored when that version first ran \(node pack: here, not in the stored graph|node shipped: .*stored/);
      });

      it('sagas of a version this process does not have are left alone, and moved on by an instance that has it', async () => {
        const log = new Log();
        await start([approval(log, 1), approval(log, 2)]);
        await orchestrator.startSaga('Order', 'ver-1', { n: 1 }, 1);
        await orchestrator.startSaga('Order', 'ver-2', { n: 1 }, 2);
        await waitingOn('ver-1', 'paid');
        await waitingOn('ver-2', 'paid');
        await orchestrator.shutdown();
        await start([approval(log, 1)], {}, true);
        // Parked, they have no owner to take over from: the instance moves on only what it has the version of.
        const v2 = (await store.get('ver-2'))!;
        expect(v2.owner, 'a parked saga holds no lease').to.equal(undefined);
        // ListFacades shows both versions and what runs on each; version 2 as one only the store knows.
        expect((await orchestrator.listFacades()).map((f) => [f.name, f.version, f.mode, f.runningSagas])).to.deep.equal([['Order', 1, 'async', 1], ['Order', 2, 'unknown', 1]]);
        await orchestrator.sendEvent('ver-1', 'paid', {});
        await waitingOn('ver-1', 'shipped');
        expect((await rejectionOf(orchestrator.sendEvent('ver-2', 'paid', {}))).code).to.equal('NOT_FOUND');
        expect((await store.get('ver-2'))!.revision, 'the v2 saga untouched').to.equal(v2.revision);
        await start([approval(log, 1), approval(log, 2)], {}, true);
        await orchestrator.sendEvent('ver-2', 'paid', {});
        await waitingOn('ver-2', 'shipped');
        await orchestrator.sendEvent('ver-2', 'shipped', {});
        expect((await ended('ver-2')).steps.map((v) => v.name)).to.deep.equal(['checkout', 'paid', 'pack', 'shipped']);
      });

      it('strict events: an event the current wait does not accept is refused, naming the state and what it accepts, and nothing is recorded', async () => {
        const log = new Log();
        await start([approval(log, 1, { strictEvents: true })]);
        await orchestrator.startSaga('Order', 'strict-1', { n: 1 });
        const before = await waitingOn('strict-1', 'paid');
        const refused = await rejectionOf(orchestrator.sendEvent('strict-1', 'shipped', {}));
        expect(refused.code).to.equal('FAILED_PRECONDITION');
        expect(refused.message).to.match(/waiting at paid: it does not accept shipped now; it accepts paid/);
        const after = (await store.get('strict-1'))!;
        expect([after.revision, after.history.length]).to.deep.equal([before.revision, before.history.length]);
        await orchestrator.sendEvent('strict-1', 'paid', {});
        await waitingOn('strict-1', 'shipped');
        expect((await rejectionOf(orchestrator.sendEvent('strict-1', 'paid', {}))).message).to.match(/waiting at shipped: .*accepts shipped/);
        await orchestrator.sendEvent('strict-1', 'shipped', {});
        expect((await ended('strict-1')).status).to.equal('COMPLETED');
      });

      it('a cancel event is accepted at any moment: the saga is compensated with the canceller\'s payload on record', async () => {
        const log = new Log();
        await start([approval(log, 1, { cancelEvent: 'cancel', strictEvents: true })]);
        await orchestrator.startSaga('Order', 'cancel-1', { n: 1 });
        await waitingOn('cancel-1', 'paid');
        await orchestrator.sendEvent('cancel-1', 'cancel', { by: 'client', reason: 'changed my mind' });
        const saga = await ended('cancel-1');
        expect(saga.status).to.equal('COMPENSATED');
        expect(saga.errorCode).to.equal('CANCELLED');
        expect(saga.error).to.match(/cancelled by event cancel: \{"by":"client","reason":"changed my mind"\}/);
        expect(saga.history.some((e) => e.type === 'EVENT_RECEIVED' && e.detail!.includes('changed my mind'))).to.equal(true);
        expect(log.calls).to.include('undo:checkout');
      });

      it('a cancel event while a step runs: the step finishes, then everything is undone', async () => {
        const log = new Log();
        await start([facade('Busy', 'async', [
          log.step('slow', { topic: 'g.x', ms: 400 }),
          { kind: 'wait', name: 'go', after: ['slow'], events: ['go'] },
        ]), ].map((d) => ({ ...d, cancelEvent: 'cancel' })));
        await orchestrator.startSaga('Busy', 'cancel-busy', { n: 1 });
        await waitFor(() => log.calls.includes('run:slow'), 10_000, 'slow to run');
        await orchestrator.sendEvent('cancel-busy', 'cancel', { by: 'ops' });
        const saga = await ended('cancel-busy');
        expect(saga.status).to.equal('COMPENSATED');
        expect(saga.errorCode).to.equal('CANCELLED');
        expect(log.spans.get('undo:slow')!.start).to.be.at.least(log.spans.get('slow')!.end);
        expect(log.undone.get('slow')).to.deep.equal({ node: 'slow', visit: 1 });
      });

      const anyKind: [string, NodeDefinition<In>][] = [
        ['wait', { kind: 'wait', name: 'here', after: ['first'], events: ['go'] }],
        ['race', { kind: 'wait', name: 'here', after: ['first'], events: ['a', 'b'], branches: ['then'], next: () => 'then' }],
        ['sleep', { kind: 'sleep', name: 'here', after: ['first'], delayMs: 60_000 }],
        ['external step', { kind: 'external', name: 'here', after: ['first'], topic: 'g.ext', timeoutMs: 60_000 }],
      ];
      for (const [kind, here] of anyKind) {
        it(`a cancel event at a ${kind}: the saga is compensated (CANCELLED), the payload on record`, async () => {
          const log = new Log();
          const nodes: NodeDefinition<In>[] = [log.step('first', { topic: 'g.x' }), here, ...(kind === 'race' ? [log.step('then', { topic: 'g.y' })] : [])];
          await start([{ ...facade('Anywhere', 'async', nodes), cancelEvent: 'cancel' }]);
          const id = `cancel-at-${kind.replace(' ', '-')}`;
          await orchestrator.startSaga('Anywhere', id, { n: 1 });
          await waitingOn(id, 'here');
          await orchestrator.sendEvent(id, 'cancel', { by: 'ops', reason: kind });
          const saga = await ended(id);
          expect([saga.status, saga.errorCode]).to.deep.equal(['COMPENSATED', 'CANCELLED']);
          expect(saga.history.some((e) => e.type === 'EVENT_RECEIVED' && e.detail!.includes(`"reason":"${kind}"`))).to.equal(true);
          expect(log.calls).to.deep.equal(['run:first', 'undo:first']);
        });
      }

      it('an event that lands between the claim of its wait\'s due timer and the recovery of that claim: the next step runs once', async () => {
        const log = new Log();
        await start([facade('Beat', 'async', [
          { kind: 'wait', name: 'w', events: ['go'], timeoutMs: 150, branches: ['s'], next: () => 's' },
          log.step('s', { topic: 'g.x' }),
        ])]);
        const claim = store.claim.bind(store);
        let injected = false;
        store.claim = async (...args) => {
          const claimed = await claim(...args);
          // The event beats the timer: written after the claim, before recovery works the claimed copy out.
          if (!injected && claimed.some((c) => c.requestId === 'beat-1')) {
            injected = true;
            await orchestrator.sendEvent('beat-1', 'go', {});
          }
          return claimed;
        };
        await orchestrator.startSaga('Beat', 'beat-1', { n: 1 });
        const saga = await ended('beat-1');
        expect([saga.status, injected]).to.deep.equal(['COMPLETED', true]);
        expect(statusOf(saga, 'w')).to.equal('SUCCEEDED');
        expect(saga.steps.find((v) => v.name === 's')!.attempts).to.equal(1);
        expect(log.calls.filter((c) => c === 'run:s')).to.have.length(1);
      });

      it('expiresAfterMs: a saga parked past its expiry is compensated as expired', async () => {
        const log = new Log();
        await start([approval(log, 1, { expiresAfterMs: 300 })]);
        await orchestrator.startSaga('Order', 'exp-1', { n: 1 });
        const saga = await ended('exp-1');
        expect(saga.status).to.equal('COMPENSATED');
        expect(saga.errorCode).to.equal('DEADLINE_EXCEEDED');
        expect(saga.error).to.match(/expired/);
        expect(log.calls).to.include('undo:checkout');
      });
    });

    it('refuses graphs that cannot run, naming the facade and the node', () => {
      const log = new Log();
      const bad = (nodes: NodeDefinition<In>[]) => () => new FacadeRegistry().register(facade('Bad', 'sync', nodes));
      expect(bad([log.step('a', { after: ['nope'] })])).to.throw(/facade Bad: .*node a: after names unknown node nope/);
      expect(bad([log.step('a'), log.step('b', { after: ['c'] }), log.step('c', { after: ['b'] })])).to.throw(/wait for each other in a cycle/);
      expect(bad([{ ...log.step('a'), branches: ['b'], next: () => 'b' }, log.step('b'), { ...log.step('c'), after: ['b'] }, { kind: 'wait', name: 'd', events: [], after: ['c'] }]))
        .to.throw(/node d: a wait needs at least one event/);
      expect(bad([{ ...log.step('a'), next: () => 'a' }])).to.throw(/node a: has next\(\) but declares no branches/);
      expect(bad([{ ...log.step('a'), branches: ['b'], next: () => 'b' }, { ...log.step('b'), after: ['a'] }]))
        .to.throw(/node b: a node a branch picks cannot also wait for 'after'/);
      expect(bad([{ ...log.step('a'), branches: ['zz'], next: () => undefined }])).to.throw(/node a: branches names unknown node zz/);
    });
  });
}
