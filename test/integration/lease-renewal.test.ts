import { expect } from 'chai';
import type { Pool } from 'pg';
import { silentLogger } from '../../src/engine/logger';
import type { EngineOptions } from '../../src/engine/orchestrator';
import type { Message } from '../../src/engine/transport';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { ended, FAKE_TOPICS, Instances } from '../helpers/instances';
import { waitFor } from '../helpers/wait';

const TTL = 400;
const OPTIONS: Partial<EngineOptions> = {
  stepTimeoutMs: 60_000,
  retry: { maxAttempts: 3, initialBackoffMs: 200, maxBackoffMs: 200, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 20,
  heartbeatMs: 50,
  leaseTtlMs: TTL,
  outcomePollMs: 50,
};

/** A broker that stops answering for one topic once `hang` is set: its publishes never return. */
class HangingTransport extends MemoryTransport {
  hang = false;
  hung = 0;
  constructor(private readonly topic: string) {
    super(FAKE_TOPICS, silentLogger);
  }

  override publish(message: Message): Promise<void> {
    if (!this.hang || message.topic !== this.topic) return super.publish(message);
    this.hung++;
    return new Promise(() => undefined);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

/** Leases are renewed on their own schedule, and for as long as work is in hand (real Postgres). */
describe('lease renewal (Postgres store)', function () {
  this.timeout(60_000);
  const instances = new Instances(OPTIONS);
  afterEach(() => instances.cleanup());

  const leaseOf = async (pool: Pool, id: string) => (await pool.query<{ owner: string; left_ms: number }>(
    'SELECT owner, extract(epoch from lease_expires_at - now()) * 1000 AS left_ms FROM sagas WHERE request_id = $1', [id])).rows[0];

  it('a recovery pass stuck on a publish does not stop the renewal of the other leases', async () => {
    const store = await instances.store(TTL);
    const pool = (store as unknown as { pool: Pool }).pool;
    const transport = new HangingTransport('t.a');
    const held = gate();
    const { orchestrator } = await instances.start(store, 'pod-1', { a: { failRuns: 1, retryable: true }, b: { gate: held.promise } }, transport);
    // A sync saga held in step b: its lease must stay with this live instance however long b takes.
    const call = orchestrator.runSync('Sync', 'held-1', { n: 1 });
    await waitFor(async () => (await store.get('held-1'))?.steps[1].status === 'RUNNING', 10_000, 'step b to run');
    // An async saga whose step a fails once: recovery fires its retry timer and publishes to a broker that hangs.
    await orchestrator.startAsync('Async', 'retry-1', { n: 1 });
    transport.hang = true;
    await waitFor(() => transport.hung >= 1, 10_000, 'the retry publish from the recovery pass to hang');
    // Renewed since the pass hung: the lease still runs a heartbeat-sized distance ahead, many TTLs later.
    const hungAt = Date.now();
    await waitFor(async () => Date.now() - hungAt > 3 * TTL && (await leaseOf(pool, 'held-1')).left_ms > TTL - 4 * OPTIONS.heartbeatMs!,
      10_000, 'the held saga\'s lease to be renewed 3 TTLs after the recovery pass hung');
    expect((await leaseOf(pool, 'held-1')).owner).to.equal(orchestrator.owner);
    held.open();
    expect(await call).to.deep.equal(['a', 'b', 'c']);
  });

  it('a shutdown keeps renewing while a step runs in-process, so that nobody else runs it again', async () => {
    const store = await instances.store(TTL);
    const held = gate();
    const first = await instances.start(store, 'pod-1', { b: { gate: held.promise } });
    const other = await instances.start(store, 'pod-2');
    const call = first.orchestrator.runSync('Sync', 'drain-1', { n: 1 });
    await waitFor(async () => (await store.get('drain-1'))?.steps[1].status === 'RUNNING', 10_000, 'step b to run');
    const shutdown = first.orchestrator.shutdown();
    const pool = (store as unknown as { pool: Pool }).pool;
    const begun = Date.now();
    // Several TTLs into the shutdown, step b still running: the lease is this instance's, and renewed.
    await waitFor(async () => {
      const lease = await leaseOf(pool, 'drain-1');
      if (lease.owner !== first.orchestrator.owner) throw new Error(`taken by ${lease.owner} during the shutdown`);
      return Date.now() - begun > 3 * TTL && lease.left_ms > 0;
    }, 10_000, 'three TTLs of renewed lease');
    expect((await leaseOf(pool, 'drain-1')).owner).to.equal(first.orchestrator.owner);
    held.open();
    expect(await call).to.deep.equal(['a', 'b', 'c']);
    await shutdown;
    expect((await ended(store, 'drain-1')).status).to.equal('COMPLETED');
    expect(first.journal.calls).to.deep.equal(['run:a', 'run:b', 'run:c']);
    expect(other.journal.calls).to.deep.equal([]);
  });
});
