import { expect } from 'chai';
import type { Logger } from '../../src/engine/logger';
import { countOf, flow, produce, startInstance, visitReaches, worker, type Runs } from '../helpers/answer-flow';
import { collect, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { waitFor } from '../helpers/wait';

/** Keeps the messages it logs. */
function recordingLogger(lines: string[]): Logger {
  const log: Logger = { debug: () => undefined, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), child: () => log };
  return log;
}

/**
 * Issue 16 §2.8: in a rolling update, instance A has Flow version 1 only and B versions 1 and 2,
 * in one consumer group. Events (events topic) and step replies (step-replies topic) of version 2
 * sagas that reach A's partitions must reach an instance with version 2, not the dead-letter topic.
 */
describe('a mixed deployment on Kafka + Postgres: events and step replies of a version an instance lacks are applied', function () {
  this.timeout(240_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('every version 2 saga gets its reply and its event, each applied once, nothing dead-lettered', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const runs: Runs = [];
    const logged: string[] = [];
    const a = await startInstance({ dsn: db.dsn, names, podId: 'a', defs: [flow(1, 'a', runs)], logger: recordingLogger(logged) });
    cleanups.push(() => a.stop());
    const dead = await collect(`${names.topicPrefix}dlq`);
    cleanups.push(() => dead.stop());
    const w = await worker(names, (cmd) => ({ output: { price: 3, for: cmd.requestId } }));
    cleanups.push(() => w.stop());
    // Once b's consumers have joined, each of the two instances holds one of the two partitions of each topic.
    const b = await startInstance({ dsn: db.dsn, names, podId: 'b', defs: [flow(1, 'b', runs), flow(2, 'b', runs)] });
    cleanups.push(() => b.stop());

    const ids = Array.from({ length: 12 }, (_, i) => `mv-${i}`);
    for (const id of ids) await b.orchestrator.startSaga('Flow', id, {}, 2);
    // The worker's replies come on the step-replies topic; today A dead-letters those on its partition.
    const settled = (id: string) => waitFor(async () => {
      const deadHere = dead.messages.filter((m) => m.key?.toString() === id);
      if (deadHere.length > 0) return `dead-lettered: ${deadHere.map((m) => m.headers?.['x-dead-letter-reason']?.toString()).join('; ')}`;
      const saga = await b.store.get(id);
      return saga?.steps.some((v) => v.name === 'go' && v.status === 'WAITING') ? 'waiting for go' : undefined;
    }, 60_000, `${id} to get its reply`);
    expect(await Promise.all(ids.map(settled)), 'after the replies').to.deep.equal(ids.map(() => 'waiting for go'));

    await produce(names.topicPrefix, 'ev.events', ids.map((id) => ({ key: id, value: JSON.stringify({ event: 'go', payload: { id }, idempotencyKey: `${id}:go` }) })));
    const ended = (id: string) => waitFor(async () => {
      const deadHere = dead.messages.filter((m) => m.key?.toString() === id);
      if (deadHere.length > 0) return `dead-lettered: ${deadHere.map((m) => m.headers?.['x-dead-letter-reason']?.toString()).join('; ')}`;
      const saga = await b.store.get(id);
      return saga && saga.status !== 'RUNNING' ? saga.status : undefined;
    }, 60_000, `${id} to end`);
    expect(await Promise.all(ids.map(ended)), 'after the events').to.deep.equal(ids.map(() => 'COMPLETED'));

    for (const id of ids) {
      const saga = (await b.store.get(id))!;
      expect([countOf(saga, 'EVENT_RECEIVED'), countOf(saga, 'STEP_SUCCEEDED', 'quote')], `${id}: events, replies`).to.deep.equal([1, 1]);
      expect(runs.filter((r) => r.endsWith(`:${id}`)), `${id}: runs`).to.deep.equal([`b:after:${id}`, `b:more:${id}`]);
    }
    // A did get some of them: by key, its partitions hold about half.
    expect(logged.filter((m) => m.includes('handed back')).length, 'what A handed back').to.be.greaterThan(0);
    expect(dead.messages.map((m) => m.key?.toString()), 'dead-lettered').to.deep.equal([]);
  });

  it('the only instance with version 2 dies: what reaches A waits until another instance with the version is up, then is applied once', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const runs: Runs = [];
    const logged: string[] = [];
    const a = await startInstance({ dsn: db.dsn, names, podId: 'a', defs: [flow(1, 'a', runs)], logger: recordingLogger(logged) });
    cleanups.push(() => a.stop());
    const dead = await collect(`${names.topicPrefix}dlq`);
    cleanups.push(() => dead.stop());
    const w = await worker(names, (cmd) => ({ output: { price: 3, for: cmd.requestId } }));
    cleanups.push(() => w.stop());
    const b1 = await startInstance({ dsn: db.dsn, names, podId: 'b1', defs: [flow(1, 'b1', runs), flow(2, 'b1', runs)] });
    cleanups.push(() => b1.stop());
    const ids = Array.from({ length: 12 }, (_, i) => `owner-${i}`);
    for (const id of ids) await b1.orchestrator.startSaga('Flow', id, {}, 2);
    for (const id of ids) await visitReaches(b1.store, id, 'go', 'WAITING');

    // b1 dies, and the events come: the sagas are parked (no owner), and no live instance has
    // version 2. A hands them back; nobody applies them, so A holds them (a retryable failure:
    // kept, uncommitted) and hands them back again until b2, with version 2 too, is up.
    await b1.crash();
    await produce(names.topicPrefix, 'ev.events', ids.map((id) => ({ key: id, value: JSON.stringify({ event: 'go', payload: { id } }) })));
    await waitFor(() => logged.some((m) => m.includes('(retryable)')) || dead.messages.length > 0, 60_000, 'A to hold the events for sagas no live instance can move');
    const b2 = await startInstance({ dsn: db.dsn, names, podId: 'b2', defs: [flow(1, 'b2', runs), flow(2, 'b2', runs)] });
    cleanups.push(() => b2.stop());

    const ended = (id: string) => waitFor(async () => {
      const deadHere = dead.messages.filter((m) => m.key?.toString() === id);
      if (deadHere.length > 0) return `dead-lettered: ${deadHere.map((m) => m.headers?.['x-dead-letter-reason']?.toString()).join('; ')}`;
      const saga = await b2.store.get(id);
      return saga && saga.status !== 'RUNNING' ? saga.status : undefined;
    }, 60_000, `${id} to end`);
    expect(await Promise.all(ids.map(ended)), 'after the events').to.deep.equal(ids.map(() => 'COMPLETED'));
    for (const id of ids) {
      const saga = (await b2.store.get(id))!;
      expect(countOf(saga, 'EVENT_RECEIVED'), `${id}: events`).to.equal(1);
      expect(runs.filter((r) => r.endsWith(`:${id}`)), `${id}: runs`).to.deep.equal([`b2:after:${id}`, `b2:more:${id}`]);
    }
    expect(logged.filter((m) => m.includes('handed back')).length, 'what A handed back').to.be.greaterThan(0);
    expect(dead.messages.map((m) => m.key?.toString()), 'dead-lettered').to.deep.equal([]);
  });
});
