import { expect } from 'chai';
import { silentLogger } from '../../src/engine/logger';
import { decodeMessage, encodeMessage } from '../../src/engine/messages';
import { Orchestrator } from '../../src/engine/orchestrator';
import { RecentSagas, sizeOf } from '../../src/engine/recent';
import { FacadeRegistry } from '../../src/engine/registry';
import { Saga, type SagaSnapshot } from '../../src/engine/saga';
import type { Message, Transport } from '../../src/engine/transport';
import { MemorySagaStore } from '../../src/store/memory-store';
import { fakeFacade, fakeStep, type Journal } from '../helpers/fake-facade';

/** Keeps what is published; delivers nothing (the test hands messages to the orchestrator itself). */
class HeldTransport implements Transport {
  readonly published: Message[] = [];
  async publish(message: Message): Promise<void> { this.published.push(message); }
  async subscribe(): Promise<void> {}
  async drain(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}
  last(node: string): Message {
    const m = this.published.findLast((p) => { const d = decodeMessage(p); return d.kind === 'step' && d.node === node; });
    if (!m) throw new Error(`no message for ${node}`);
    return m;
  }
}

describe('RecentSagas', () => {
  it('hands a copy out once, and drops the oldest beyond its capacity', () => {
    const recent = new RecentSagas(2);
    const snap = (id: string) => ({ requestId: id }) as SagaSnapshot;
    recent.put(snap('a'));
    recent.put(snap('b'));
    recent.put(snap('c'));
    expect(recent.take('a')).to.equal(undefined);
    expect(recent.take('b')?.requestId).to.equal('b');
    expect(recent.take('b')).to.equal(undefined);
  });
});

describe('RecentSagas: bounded by bytes', () => {
  const big = (id: string, kib: number) => ({ requestId: id, steps: [{ name: 'a', output: { blob: 'x'.repeat(kib * 1024) } }], history: [] }) as unknown as SagaSnapshot;

  it('estimates a snapshot\'s bytes without serialising it: within 10 % of its JSON when strings dominate, 1.5 times when numbers do', () => {
    for (const value of [big('a', 1), big('b', 100)]) {
      const json = JSON.stringify(value).length;
      expect(sizeOf(value)).to.be.within(json * 0.9, json * 1.1);
    }
    const small = { n: 1, list: [1, 'two', null, { three: true }], s: 'é'.repeat(50) };
    expect(sizeOf(small)).to.be.within(JSON.stringify(small).length, JSON.stringify(small).length * 1.5);
  });

  it('drops the oldest copies once their bytes pass the bound, whatever their count; one copy over the whole bound is not kept', () => {
    const recent = new RecentSagas(10_000, Infinity, 1024 * 1024);
    for (let i = 0; i < 20; i++) recent.put(big(`s${i}`, 100));
    // 100 KiB each, 1 MiB allowed: the 10 newest fit.
    expect(recent.size).to.equal(10);
    expect(recent.bytes).to.be.at.most(1024 * 1024);
    expect(recent.take('s9')).to.equal(undefined);
    expect(recent.take('s10')?.requestId).to.equal('s10');
    expect(recent.bytes).to.be.within(8 * 100 * 1024, 9 * 101 * 1024);
    recent.put(big('huge', 2048));
    expect(recent.take('huge')).to.equal(undefined);
    expect(recent.size).to.equal(9);
    // Replacing a copy counts its bytes once.
    recent.put(big('s11', 1));
    expect(recent.bytes).to.be.within(8 * 100 * 1024, 8 * 101 * 1024 + 2048);
  });
});

describe('Orchestrator: the copy kept at publish may be behind the store', () => {
  let journal: Journal;
  let store: MemorySagaStore;
  let transport: HeldTransport;
  let orchestrator: Orchestrator;

  beforeEach(async () => {
    journal = { calls: [] };
    store = new MemorySagaStore();
    transport = new HeldTransport();
    const steps = ['a', 'b'].map((n) => fakeStep(n, journal, { topic: `t.${n}` }));
    const registry = new FacadeRegistry().register(fakeFacade('Async', 'async', steps, 'rb'));
    orchestrator = new Orchestrator({ registry, store, transport, logger: silentLogger, podId: 'one', outcomeTopic: 'outcomes' });
    await orchestrator.start();
  });
  afterEach(() => orchestrator.stop());

  /** Another instance's write: load, change, save (fenced). */
  async function elsewhere(id: string, change: (saga: Saga) => void): Promise<void> {
    const saga = Saga.fromSnapshot((await store.get(id))!, 'two');
    change(saga);
    saga.saved(await store.save(saga.view()));
  }

  it('does not skip a step because its copy says the previous one has not run: it asks the store', async () => {
    await orchestrator.startAsync('Async', 'r1', { n: 1 });
    // Another instance ran step a and published b (on record first); this instance's copy still has a pending.
    await elsewhere('r1', (s) => s.stepStarted('a'));
    await elsewhere('r1', (s) => {
      s.stepSucceeded('a', { step: 'a', n: 1 });
      s.stepStarted('b');
    });
    const b = encodeMessage('t.b', { kind: 'step', requestId: 'r1', facade: 'Async', version: 1, node: 'b', attempt: 1 });
    await orchestrator.handle(b);
    expect(journal.calls).to.deep.equal(['run:b']);
    expect((await store.get('r1'))!.status).to.equal('COMPLETED');
  });

  it('from a stale copy runs at most the attempt on record: its outcome is fenced, re-read, and kept for the rollback', async () => {
    await orchestrator.startAsync('Async', 'r2', { n: 1 });
    await elsewhere('r2', (s) => s.startCompensating('a', 'cancelled elsewhere', 'CANCELLED'));
    const message = transport.last('a');
    await orchestrator.handle(message);
    await orchestrator.handle(message);
    // The attempt was on record before it ran (write ahead); its output is recorded on the
    // compensating saga, so that the rollback undoes it knowing what it did. Nothing runs next.
    expect(journal.calls).to.deep.equal(['run:a']);
    const stored = (await store.get('r2'))!;
    expect(stored.status).to.equal('COMPENSATING');
    expect(stored.steps.find((s) => s.name === 'a')).to.deep.include({ status: 'SUCCEEDED', attempts: 1, output: { step: 'a', n: 1 } });
    expect(stored.steps.find((s) => s.name === 'b')?.status).to.equal('PENDING');
  });
});

describe('Orchestrator: a step is on record as started before its message leaves', () => {
  let journal: Journal;
  let store: MemorySagaStore;
  let transport: HeldTransport;
  let writes: string[];

  function instance(podId: string): Orchestrator {
    const steps = ['a', 'b'].map((n) => fakeStep(n, journal, { topic: `t.${n}` }));
    const registry = new FacadeRegistry().register(fakeFacade('Async', 'async', steps, 'rb'));
    return new Orchestrator({ registry, store, transport, logger: silentLogger, podId, outcomeTopic: 'outcomes' });
  }

  beforeEach(() => {
    journal = { calls: [] };
    writes = [];
    store = new MemorySagaStore();
    // Records each write with the step statuses it carries.
    const save = store.save.bind(store);
    store.save = (saga, changes) => {
      writes.push(saga.steps.map((s) => `${s.name}:${s.status}`).join(','));
      return save(saga, changes);
    };
    transport = new HeldTransport();
  });

  it('so its consumer runs it without a write first: one write per step, one STEP_STARTED per attempt', async () => {
    const one = instance('one');
    await one.start();
    await one.startAsync('Async', 'p1', { n: 1 });
    expect((await store.get('p1'))!.steps[0]).to.include({ status: 'RUNNING', attempts: 1 });
    await one.handle(transport.last('a'));
    expect(writes).to.deep.equal(['a:SUCCEEDED,b:RUNNING']);
    await one.handle(transport.last('b'));
    one.stop();
    expect(writes).to.deep.equal(['a:SUCCEEDED,b:RUNNING', 'a:SUCCEEDED,b:SUCCEEDED']);
    const stored = (await store.get('p1'))!;
    expect(stored.status).to.equal('COMPLETED');
    expect(stored.history.filter((e) => e.type === 'STEP_STARTED').map((e) => `${e.step} ${e.detail}`)).to.deep.equal(['a attempt 1', 'b attempt 1']);
    expect(journal.calls).to.deep.equal(['run:a', 'run:b']);
  });

  it('another instance takes over the lease with a write before it runs the attempt', async () => {
    const one = instance('one');
    const two = instance('two');
    await one.start();
    await two.start();
    await one.startAsync('Async', 'p2', { n: 1 });
    await two.handle(transport.last('a'));
    one.stop();
    two.stop();
    expect(writes[0]).to.equal('a:RUNNING,b:PENDING');
    const stored = (await store.get('p2'))!;
    expect(stored.owner).to.equal(two.owner);
    expect(stored.steps[0]).to.include({ status: 'SUCCEEDED', attempts: 1 });
    expect(journal.calls).to.deep.equal(['run:a']);
  });

  it('a redelivered message of a step that succeeded writes and publishes nothing more', async () => {
    const one = instance('one');
    await one.start();
    await one.startAsync('Async', 'p3', { n: 1 });
    const a = transport.last('a');
    await one.handle(a);
    const published = transport.published.length;
    await one.handle(a);
    one.stop();
    expect(writes).to.have.length(1);
    expect(transport.published).to.have.length(published);
    expect(journal.calls).to.deep.equal(['run:a']);
  });
});
