import { expect } from 'chai';
import { Saga } from '../../src/engine/saga';
import { createMetrics } from '../../src/metrics';
import { parseMetrics, sumOf } from '../helpers/prometheus';

/** A saga whose history events carry the given times (ms after its creation), written as the engine writes them. */
function at(saga: Saga, msAfterStart: number): void {
  const v = saga.view();
  const e = v.history[v.history.length - 1];
  (e as { at: string }).at = new Date(Date.parse(v.createdAt) + msAfterStart).toISOString();
}

async function scrape(m: ReturnType<typeof createMetrics>) {
  return parseMetrics((await m.scrape()!).text);
}

describe('metrics: the engine\'s series from saga history', () => {
  it('counts a saga\'s start, attempts, retries, abort, compensations and end, once per stored event', async () => {
    const m = createMetrics(true);
    const saga = Saga.start({ requestId: 'r1', facade: 'F', version: 2, mode: 'async', input: {}, steps: ['a', 'b'], podId: 'p' });
    saga.stepStarted('a'); at(saga, 0);
    m.engine.recorded(saga.view(), 0); // the create: SAGA_STARTED and a's start
    saga.saved(1);
    saga.stepSucceeded('a', 1); at(saga, 250);
    saga.stepStarted('b'); at(saga, 250);
    m.engine.recorded(saga.view(), saga.changes().storedEvents);
    saga.saved(2);
    saga.stepRetrying('b', 'down', new Date()); at(saga, 300);
    saga.stepStarted('b'); at(saga, 400);
    saga.stepFailed('b', 'refused'); at(saga, 1_400);
    saga.startCompensating('b', 'refused', 'FAILED_PRECONDITION'); at(saga, 1_400);
    saga.compensationStarted('b');
    saga.compensationAttemptFailed('b', 'oops', false);
    saga.compensationStarted('b');
    saga.compensationSucceeded('b');
    saga.compensationStarted('a');
    saga.compensationSucceeded('a');
    saga.compensated(); at(saga, 2_000);
    const from = saga.changes().storedEvents;
    m.engine.recorded(saga.view(), from);
    saga.saved(3);
    m.engine.recorded(saga.view(), saga.changes().storedEvents); // nothing new: counts nothing

    const s = await scrape(m);
    expect(sumOf(s, 'och_sagas_started_total', { facade: 'F', version: '2' })).to.equal(1);
    expect(sumOf(s, 'och_sagas_ended_total', { facade: 'F', version: '2', status: 'COMPENSATED' })).to.equal(1);
    expect(sumOf(s, 'och_saga_duration_seconds_sum', { facade: 'F', status: 'COMPENSATED' })).to.be.closeTo(2, 1e-9);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_sum', { node: 'a', outcome: 'succeeded' })).to.be.closeTo(0.25, 1e-9);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_sum', { node: 'b', outcome: 'retried' })).to.be.closeTo(0.05, 1e-9);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_sum', { node: 'b', outcome: 'failed' }), 'from the second attempt\'s start').to.be.closeTo(1, 1e-9);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_count')).to.equal(3);
    expect(sumOf(s, 'och_step_retries_total', { facade: 'F', node: 'b' })).to.equal(1);
    expect(sumOf(s, 'och_saga_aborts_total', { facade: 'F', node: 'b', code: 'FAILED_PRECONDITION' })).to.equal(1);
    expect(sumOf(s, 'och_compensations_total', { node: 'a' }) + sumOf(s, 'och_compensations_total', { node: 'b' })).to.equal(2);
    expect(sumOf(s, 'och_compensation_failures_total', { facade: 'F', node: 'b' })).to.equal(1);
  });

  it('times a wait from its STEP_WAITING, and labels a loop\'s visits by their node', async () => {
    const m = createMetrics(true);
    const saga = Saga.start({ requestId: 'r2', facade: 'W', version: 1, mode: 'async', input: {}, steps: ['w'], podId: 'p' });
    saga.parked('w', new Date(Date.now() + 60_000), 'webhook'); at(saga, 0);
    saga.stepSucceeded('w', {}); at(saga, 3_000);
    const again = saga.reopen('w');
    saga.stepStarted(again); at(saga, 3_000);
    saga.stepSucceeded(again, {}); at(saga, 3_100);
    m.engine.recorded(saga.view(), 0);
    const s = await scrape(m);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_count', { facade: 'W', node: 'w', outcome: 'succeeded' })).to.equal(2);
    expect(sumOf(s, 'och_step_attempt_duration_seconds_sum', { facade: 'W', node: 'w' })).to.be.closeTo(3.1, 1e-9);
    expect(s.some((x) => x.labels.node === again)).to.equal(false);
  });

  it('counts throttle refusals and timer lateness; off, it scrapes nothing', async () => {
    const m = createMetrics(true);
    m.engine.throttleRejected('T');
    m.engine.timersFired([20, 1_500]);
    const s = await scrape(m);
    expect(sumOf(s, 'och_throttle_rejections_total', { facade: 'T' })).to.equal(1);
    expect(sumOf(s, 'och_timer_lateness_seconds_count')).to.equal(2);
    expect(sumOf(s, 'och_timer_lateness_seconds_bucket', { le: '0.025' })).to.equal(1);
    const off = createMetrics(false);
    expect(off.scrape()).to.equal(undefined);
    expect(off.transport).to.equal(undefined);
    expect(off.store).to.equal(undefined);
  });

  it('sums the consumer lag of a topic\'s partitions, each at its latest value', async () => {
    const m = createMetrics(true);
    m.transport!.consumerLag('t', 0, 5);
    m.transport!.consumerLag('t', 1, 7);
    m.transport!.consumerLag('t', 0, 0);
    m.transport!.deadLettered('t', 'poison');
    const s = await scrape(m);
    expect(sumOf(s, 'och_kafka_consumer_lag_messages', { topic: 't' })).to.equal(7);
    expect(sumOf(s, 'och_dead_letters_total', { topic: 't', reason: 'poison' })).to.equal(1);
  });
});
