import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { countOf, flow, produce, startInstance, visitReaches, worker, type Instance, type Runs } from '../helpers/answer-flow';
import { collect, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

/**
 * Issue 16 §1.3: a client that retries after a lost answer must not be told its event (or its
 * step's outcome) was refused because the first delivery finished the saga. The idempotency key
 * (the visit, for an answer) is checked before the saga's status, on every way in: SendEvent, the
 * events topic, the console's event action, CompleteStep / FailStep. The saga is read from
 * Postgres by another instance than the one that finished it.
 */
describe('a repeat after the saga ended is answered OK and changes nothing (Kafka + Postgres)', function () {
  this.timeout(180_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('SendEvent, the events topic, the console and CompleteStep/FailStep repeated after COMPLETED: OK, no dead letter, one event, one run', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const runs: Runs = [];
    const a: Instance = await startInstance({ dsn: db.dsn, names, podId: 'a', defs: [flow(1, 'a', runs)] });
    cleanups.push(() => a.stop());
    const dead = await collect(`${names.topicPrefix}dlq`);
    cleanups.push(() => dead.stop());
    const w = await worker(names, () => undefined);
    cleanups.push(() => w.stop());

    const id = 'rep-1';
    await call(a.client, 'StartSaga', { facade: 'Flow', input_json: '{}', version: 1 }, { 'x-request-id': id });
    await visitReaches(a.store, id, 'quote', 'WAITING');
    await call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"price":7}' });
    await visitReaches(a.store, id, 'go', 'WAITING');
    await call(a.client, 'SendEvent', { request_id: id, event: 'go', payload_json: '{"n":1}', idempotency_key: 'go-1' });
    await waitFor(async () => (await a.store.get(id))?.status === 'COMPLETED', 60_000, `${id} to complete`);

    // Another instance, which reads the finished saga from Postgres, gets the repeats.
    const b: Instance = await startInstance({ dsn: db.dsn, names, podId: 'b', defs: [flow(1, 'b', runs)] });
    cleanups.push(() => b.stop());
    const outcomes: string[] = [];
    const attempt = async (what: string, p: Promise<unknown>) => {
      const err = await p.then(() => undefined, (e: unknown) => e as grpc.ServiceError);
      outcomes.push(`${what}: ${err ? `${grpc.status[err.code]} ${err.details}` : 'OK'}`);
    };
    await attempt('SendEvent repeated', call(b.client, 'SendEvent', { request_id: id, event: 'go', payload_json: '{"n":1}', idempotency_key: 'go-1' }));
    await attempt('CompleteStep repeated', call(b.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"price":7}' }));
    await attempt('FailStep after CompleteStep', call(b.client, 'FailStep', { request_id: id, step: 'quote', error: 'late' }));
    const console = await fetch(`${b.console}/api/sagas/${id}/events`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event: 'go', payload: { n: 1 }, idempotency_key: 'go-1' }),
    });
    outcomes.push(`console event repeated: ${console.status === 200 ? 'OK' : `${console.status} ${await console.text()}`}`);
    expect(outcomes).to.deep.equal([
      'SendEvent repeated: OK', 'CompleteStep repeated: OK', 'FailStep after CompleteStep: OK', 'console event repeated: OK',
    ]);

    // On the events topic: the repeat, then a record that is always dead-lettered (not JSON), same
    // key, same partition: once that one is in the dead-letter topic, the repeat was handled.
    await produce(names.topicPrefix, 'ev.events', [
      { key: id, value: JSON.stringify({ event: 'go', payload: { n: 1 }, idempotencyKey: 'go-1' }) },
      { key: id, value: '{not json' },
    ]);
    await waitFor(() => dead.messages.some((m) => m.key?.toString() === id && m.value?.toString() === '{not json'), 60_000, 'the marker to be dead-lettered');
    expect(dead.messages.filter((m) => m.key?.toString() === id).map((m) => m.value?.toString()), 'dead-lettered for rep-1').to.deep.equal(['{not json']);

    // A new key is still refused: the saga is over.
    const late = await rejectionOf(call(b.client, 'SendEvent', { request_id: id, event: 'go', payload_json: '{}', idempotency_key: 'go-2' }));
    expect(late.code).to.equal(grpc.status.FAILED_PRECONDITION);

    const saga = (await b.store.get(id))!;
    expect(saga.status).to.equal('COMPLETED');
    expect([countOf(saga, 'EVENT_RECEIVED'), countOf(saga, 'STEP_SUCCEEDED', 'quote'), countOf(saga, 'STEP_FAILED')], 'events, quote answers, failures').to.deep.equal([1, 1, 0]);
    expect(runs.filter((r) => r.endsWith(`:${id}`)), 'step runs').to.deep.equal(['a:after:rep-1']);
  });
});
