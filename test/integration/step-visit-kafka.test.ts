import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { countOf, flow, startInstance, visitReaches, worker, type Runs } from '../helpers/answer-flow';
import { uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

/**
 * Issue 16 §2.14: CompleteStep / FailStep name the visit they answer (`visit`, 0 = the current
 * one). A late answer for an earlier visit of a loop must not settle the newest visit; it is
 * answered OK when that visit is settled already, and FAILED_PRECONDITION naming the visit when it
 * is not waiting for an answer.
 */
describe('CompleteStep / FailStep answer one visit of a loop (Kafka + Postgres, over gRPC)', function () {
  this.timeout(180_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('a late answer for visit 1 leaves visit 2 waiting; visit 3 is refused naming it; visit 2 moves the saga on', async () => {
    const names = uniqueKafkaNames();
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const runs: Runs = [];
    const a = await startInstance({ dsn: db.dsn, names, podId: 'a', defs: [flow(1, 'a', runs)] });
    cleanups.push(() => a.stop());
    const w = await worker(names, () => undefined);
    cleanups.push(() => w.stop());
    const id = 'loop-1';
    await call(a.client, 'StartSaga', { facade: 'Flow', input_json: '{}', version: 1 }, { 'x-request-id': id });
    await visitReaches(a.store, id, 'quote', 'WAITING');
    await call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"again":true,"price":9}', visit: 1 });
    await visitReaches(a.store, id, 'quote#2', 'WAITING');

    // The worker of visit 1 answers again, late (a retry after a lost answer), with another output.
    await call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"again":false,"price":8}', visit: 1 });
    await call(a.client, 'FailStep', { request_id: id, step: 'quote', error: 'visit 1 gave up', visit: 1 });
    let saga = (await a.store.get(id))!;
    expect(saga.steps.map((v) => [v.name, v.status]).filter(([n]) => n.startsWith('quote')), 'quote visits').to.deep.equal([['quote', 'SUCCEEDED'], ['quote#2', 'WAITING']]);
    expect(saga.steps.find((v) => v.name === 'quote')!.output).to.deep.equal({ again: true, price: 9 });

    const refused = await rejectionOf(call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{}', visit: 3 }));
    expect([refused.code, refused.details]).to.deep.equal([grpc.status.FAILED_PRECONDITION, 'visit 3 of step quote of saga loop-1 is not waiting for its outcome (not started)']);
    const negative = await rejectionOf(call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{}', visit: -1 }));
    expect(negative.code).to.equal(grpc.status.INVALID_ARGUMENT);

    await call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"again":false,"price":5}', visit: 2 });
    await visitReaches(a.store, id, 'go', 'WAITING');
    // Visit 0: the current one, already answered.
    await call(a.client, 'CompleteStep', { request_id: id, step: 'quote', output_json: '{"again":true}' });
    await call(a.client, 'SendEvent', { request_id: id, event: 'go', payload_json: '{}', idempotency_key: 'go-1' });
    saga = await waitFor(async () => {
      const s = await a.store.get(id);
      return s?.status === 'COMPLETED' ? s : undefined;
    }, 60_000, `${id} to complete`);
    expect(saga.steps.filter((v) => v.name.startsWith('quote')).map((v) => [v.name, v.status, v.output])).to.deep.equal([
      ['quote', 'SUCCEEDED', { again: true, price: 9 }], ['quote#2', 'SUCCEEDED', { again: false, price: 5 }],
    ]);
    expect([countOf(saga, 'STEP_SUCCEEDED', 'quote'), countOf(saga, 'STEP_SUCCEEDED', 'quote#2'), countOf(saga, 'STEP_FAILED')]).to.deep.equal([1, 1, 0]);
    expect(runs).to.deep.equal(['a:after:loop-1']);
    // Each visit's command went out once (no visit 3 was started by a late answer).
    expect(w.commands.filter((c) => c.requestId === id).map((c) => c.visit)).to.deep.equal([1, 2]);
  });
});
