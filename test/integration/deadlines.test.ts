import { expect } from 'chai';
import type { Pool } from 'pg';
import { silentLogger } from '../../src/engine/logger';
import type { EngineOptions } from '../../src/engine/orchestrator';
import type { Message } from '../../src/engine/transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { ended, FAKE_TOPICS, Instances } from '../helpers/instances';
import { waitFor } from '../helpers/wait';

const OPTIONS: Partial<EngineOptions> = {
  stepTimeoutMs: 300,
  asyncDeadlineMs: 1_500,
  retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 50,
  heartbeatMs: 100,
  leaseTtlMs: 2_000,
  outcomePollMs: 50,
};

/** A transport that loses the messages of one topic, as a dead-lettered message is lost to its saga. */
class LosingTransport extends MemoryTransport {
  readonly lost: Message[] = [];
  constructor(private readonly losing: string) {
    super(FAKE_TOPICS, silentLogger);
  }

  override async publish(message: Message): Promise<void> {
    if (message.topic === this.losing) this.lost.push(message);
    else await super.publish(message);
  }
}

/** Every running saga has a wake-up at its deadline, and a finished one none (real Postgres). */
describe('deadlines and timers (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());

  it('a saga whose driving message is lost is compensated at its deadline by its live owner', async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const transport = new LosingTransport('t.b');
    const { orchestrator, journal } = await instances.start(store, 'pod-1', {}, transport);
    await orchestrator.startAsync('Async', 'lost-1', { n: 1 });
    await waitFor(() => transport.lost.length > 0, 10_000, "step b's message to be lost");
    // Nothing moves the saga now: its owner lives and renews its lease; only the deadline can end it.
    const saga = await ended(store, 'lost-1');
    expect(saga.status).to.equal('COMPENSATED');
    expect(saga.errorCode).to.equal('DEADLINE_EXCEEDED');
    // b is on record as started (its message may have reached a consumer before it was lost): undone too.
    expect(journal.calls).to.deep.equal(['run:a', 'undo:b', 'undo:a']);
  });

  it('a saga that ends on a wait keeps no timer once finished', async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const orchestrator = await instances.run(store, 'pod-1', Instances.waitFacade('Parked', { calls: [] }, true));
    {
      await orchestrator.startAsync('Parked', 'done-1', { n: 1 });
      await waitFor(async () => (await store.get('done-1'))?.steps.find((v) => v.name === 'w')?.status === 'WAITING', 10_000, 'the wait');
      await orchestrator.sendEvent('done-1', 'go', {});
      expect((await ended(store, 'done-1')).status).to.equal('COMPLETED');
      const pool = (store as unknown as { pool: Pool }).pool;
      const { rows } = await pool.query<{ wake_at: Date | null }>("SELECT wake_at FROM sagas WHERE request_id = 'done-1'");
      expect(rows).to.deep.equal([{ wake_at: null }]);
    }
  });

  it('a running saga has a wake-up at its deadline from its first write', async () => {
    const store = await instances.store(OPTIONS.leaseTtlMs!);
    const transport = new LosingTransport('t.a');
    const { orchestrator } = await instances.start(store, 'pod-1', {}, transport);
    await orchestrator.startAsync('Async', 'armed-1', { n: 1 });
    const saga = await store.get('armed-1');
    expect(saga?.status).to.equal('RUNNING');
    expect(saga?.wakeAt).to.be.a('string').and.equal(saga?.deadline);
  });
});
