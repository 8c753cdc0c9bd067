import { expect } from 'chai';
import { HAMMER, type HammerResult } from '../../src/examples/hammer/facade';
import type { HammerInput } from '../../src/examples/hammer/input';
import type { FactoryCall } from '../../src/examples/hammer/services/factory-service';
import { KAFKA_BROKERS, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { call, Stack } from '../helpers/stack';

/** factory.v1.FactoryCall as the client reads it (int64 as decimal strings), times as numbers. */
type Work = Omit<FactoryCall, 'started_at_ms' | 'ended_at_ms'> & { started_at_ms: number; ended_at_ms: number };

/**
 * Seed 002's hammer on Kafka + Postgres: the orchestrator and the demo factory as separate
 * processes, the head made by the factory's head worker from the head-commands topic.
 */
describe('hammer (seed 002): head and handle in parallel, then the hammer, on Kafka + Postgres', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  before(async () => {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'kafka', kafka: { ...uniqueKafkaNames(), brokers: KAFKA_BROKERS }, postgres: db.dsn, factory: true });
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
  });

  /** What the factory did for one request, in the order the work ended. */
  async function workFor(requestId: string): Promise<Work[]> {
    const { calls } = (await call<{ calls: (Omit<Work, 'started_at_ms' | 'ended_at_ms'> & { started_at_ms: string; ended_at_ms: string })[] }>(stack!.factory, 'ListFactoryCalls', {})).response;
    return calls.filter((c) => c.request_id === requestId).map((c) => ({ ...c, started_at_ms: Number(c.started_at_ms), ended_at_ms: Number(c.ended_at_ms) }));
  }

  /** The one successful piece of work of `method`. */
  function one(work: Work[], method: Work['method']): Work {
    const done = work.filter((w) => w.method === method && w.error === '');
    expect(done, `${method} done once: ${JSON.stringify(work)}`).to.have.length(1);
    return done[0];
  }

  it('COMPLETED with three ids; head and handle were made at the same time, the hammer after both', async () => {
    const input: HammerInput = { headType: 'claw', handleSize: 'short', failAt: '', delayMs: 1_500 };
    expect(await stack!.startSaga(HAMMER, input, 'hammer-ok')).to.include({ request_id: 'hammer-ok' });
    const saga = await stack!.sagaReaches('hammer-ok', 'COMPLETED', 60_000);

    const output = JSON.parse(saga.output_json) as HammerResult;
    expect(output).to.have.all.keys('headId', 'handleId', 'hammerId');
    const work = await workFor('hammer-ok');
    const [head, handle, hammer] = [one(work, 'MakeHead'), one(work, 'MakeHandle'), one(work, 'MakeHammer')];
    expect([head.head_id, handle.handle_id, hammer.hammer_id]).to.deep.equal([output.headId, output.handleId, output.hammerId]);
    expect([hammer.head_id, hammer.handle_id], 'the hammer got both results').to.deep.equal([output.headId, output.handleId]);
    expect(head.idempotency_key).to.equal('hammer-ok:head');

    // Each took delayMs; their intervals overlap, so neither waited for the other.
    for (const w of [head, handle]) expect(w.ended_at_ms - w.started_at_ms, w.method).to.be.at.least(input.delayMs - 5);
    expect(head.started_at_ms, 'head started before handle ended').to.be.below(handle.ended_at_ms);
    expect(handle.started_at_ms, 'handle started before head ended').to.be.below(head.ended_at_ms);
    expect(hammer.started_at_ms, 'hammer started after both ended').to.be.at.least(Math.max(head.ended_at_ms, handle.ended_at_ms));
    expect(work.filter((w) => w.method === 'DestroyHead')).to.deep.equal([]);
  });

  it('failAt hammer: COMPENSATED; DestroyHead once, with the head id of the head step\'s output; the handle stays', async () => {
    const input: HammerInput = { headType: 'sledge', handleSize: 'long', failAt: 'hammer', delayMs: 200 };
    await stack!.startSaga(HAMMER, input, 'hammer-fail');
    const saga = await stack!.sagaReaches('hammer-fail', 'COMPENSATED', 60_000);
    expect(saga.error_code).to.equal('FAILED_PRECONDITION');

    const headStep = saga.steps.find((s) => s.name === 'head');
    const { headId } = JSON.parse(headStep?.output_json ?? '{}') as { headId?: string };
    expect(headId, 'the head step\'s output').to.be.a('string');
    const work = await workFor('hammer-fail');
    expect(one(work, 'MakeHead').head_id).to.equal(headId);
    expect(work.filter((w) => w.method === 'MakeHammer').map((w) => w.error)).to.deep.equal(['FAILED_PRECONDITION: hammer assembly failed: fault injected (failAt: hammer)']);
    const destroyed = work.filter((w) => w.method === 'DestroyHead');
    expect(destroyed.map((w) => [w.head_id, w.error])).to.deep.equal([[headId, '']]);
    // Nothing undid the handle: the only work naming it made it and (tried to) use it.
    const { handle_id } = one(work, 'MakeHandle');
    expect(work.filter((w) => w.handle_id === handle_id).map((w) => w.method)).to.have.members(['MakeHandle', 'MakeHammer']);
  });
});
