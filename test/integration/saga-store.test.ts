import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Pool } from 'pg';
import { ConcurrencyError, StoreUnavailableError, ValidationError } from '../../src/engine/errors';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { Saga, type SagaSnapshot, type SagaStatus } from '../../src/engine/saga';
import type { SagaFilter, SagaStore } from '../../src/engine/store';
import { MemorySagaStore } from '../../src/store/memory-store';
import { migrate } from '../../src/store/postgres/migrate';
import { MIGRATIONS } from '../../src/store/postgres/migrations';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { freshDatabase, ThrowawayPostgres } from '../helpers/postgres';
import { rejectionOf, waitFor } from '../helpers/wait';

/** Short leases, so that tests can wait them out. */
const LEASE_MS = 300;
/** How many sagas the paging test lists. */
const BULK = 3000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** As a snapshot travels as JSON: no keys holding undefined. Stores must return exactly this. */
/** As JSON, without what a store fills in on reads (leaseAgeMs). */
function plain<T>(value: T): T {
  if (value === undefined) return value;
  return JSON.parse(JSON.stringify(value, (key, v: unknown) => (key === 'leaseAgeMs' ? undefined : v))) as T;
}

function started(requestId: string, opts: { facade?: string; podId?: string; steps?: string[]; deadline?: Date; input?: unknown } = {}): Saga {
  return Saga.start({
    requestId,
    facade: opts.facade ?? 'booking.CreateBooking',
    version: 3,
    mode: 'sync',
    input: 'input' in opts ? opts.input : { customer: 'c-1', items: [{ sku: 'sku-1', qty: 2, price: 9.99 }], note: null, tags: [] },
    steps: opts.steps ?? ['reserve', 'charge'],
    podId: opts.podId ?? 'pod-a',
    deadline: opts.deadline,
  });
}

const snap = (saga: Saga): SagaSnapshot => plain(saga.snapshot());

/** A snapshot with the given status (and fields) as stored, without going through the transitions. */
function withStatus(requestId: string, status: SagaStatus, extra: Partial<SagaSnapshot> = {}): SagaSnapshot {
  return { ...snap(started(requestId, { podId: extra.owner })), status, ...extra };
}

async function createAll(store: SagaStore, sagas: SagaSnapshot[]): Promise<void> {
  for (let i = 0; i < sagas.length; i += 200) {
    const results = await Promise.all(sagas.slice(i, i + 200).map((s) => store.create(s)));
    expect(results.every((r) => r.created)).to.equal(true);
  }
}

const ids = (sagas: readonly SagaSnapshot[]): string[] => sagas.map((s) => s.requestId).sort();
const secondsAgo = (s: number): string => new Date(Date.now() - s * 1_000).toISOString();

/** Newest first: createdAt desc, then requestId desc. */
function newestFirst(a: SagaSnapshot, b: SagaSnapshot): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.requestId < b.requestId ? 1 : a.requestId > b.requestId ? -1 : 0;
}

/**
 * The SagaStore contract. Every store must pass it as it is: makeStore returns a new, empty store
 * each time, with leases of leaseTtlMs (LEASE_MS unless a test needs leases that outlive it).
 */
function contract(name: string, makeStore: (leaseTtlMs: number) => Promise<SagaStore>): void {
  describe(`SagaStore contract: ${name}`, function () {
    this.timeout(60_000);
    let store: SagaStore;
    beforeEach(async () => { store = await makeStore(LEASE_MS); });
    afterEach(async () => { await store.close(); });

    describe('create and get', () => {
      it('round-trips snapshots deep-equal, at revision 1', async () => {
        const fresh = started('rt-fresh', { input: 'just a string' });

        const midway = started('rt-midway', { deadline: new Date(Date.now() + 60_000), steps: ['reserve', 'charge', 'notify'] });
        midway.stepStarted('reserve');
        midway.stepSucceeded('reserve', { orderId: 'o-1', lines: [1, 2.5, null, 'ünïcødé ✓'], nested: { empty: {}, no: false } });
        midway.stepStarted('charge');
        midway.stepTaken('charge', 'pod-b/2f9c01aa');
        midway.stepRetrying('charge', 'payment: UNAVAILABLE', new Date(Date.now() + 5_000));
        midway.wakeAt(new Date(Date.now() + 5_000));

        const done = started('rt-done', { input: null });
        done.stepStarted('reserve');
        done.stepSucceeded('reserve', null); // a JSON null output is an output, kept as null
        done.stepStarted('charge');
        done.stepSucceeded('charge', [0, -1, 1e21]);
        done.complete({ bookingId: 'b-1', total: 19.98 });

        const failed = started('rt-failed', { input: [1, 'two', { three: 3 }] });
        failed.stepStarted('reserve');
        failed.stepFailed('reserve', 'order: FAILED_PRECONDITION: out of stock');
        failed.startCompensating('reserve', 'out of stock', 'FAILED_PRECONDITION');
        failed.compensationStarted('reserve');
        failed.compensationAttemptFailed('reserve', 'order: UNAVAILABLE', true);
        failed.compensationFailed('reserve could not be compensated');

        for (const saga of [fresh, midway, done, failed]) {
          const snapshot = snap(saga);
          const result = await store.create(snapshot);
          expect(result.created, saga.requestId).to.equal(true);
          expect(plain(result.saga), saga.requestId).to.deep.equal({ ...snapshot, revision: 1 });
          expect(plain(await store.get(saga.requestId)), saga.requestId).to.deep.equal({ ...snapshot, revision: 1 });
        }
        expect(plain(await store.get('no-such-saga'))).to.equal(undefined);
      });

      it('with an existing request id, inserts nothing and returns the stored saga (created=false)', async () => {
        const first = snap(started('dup-1'));
        await store.create(first);
        const other = started('dup-1', { facade: 'other.Facade', steps: ['x', 'y', 'z'], input: { different: true }, podId: 'pod-b' });
        other.stepStarted('x');
        const result = await store.create(snap(other));
        expect(result.created).to.equal(false);
        expect(plain(result.saga)).to.deep.equal({ ...first, revision: 1 });
        expect(plain(await store.get('dup-1'))).to.deep.equal({ ...first, revision: 1 });
      });

      it('reports on reads how long ago the lease was taken or renewed: the age grows until a renewal', async () => {
        await store.create(snap(started('age-1', { podId: 'pod-a' })));
        const young = (await store.get('age-1'))!.leaseAgeMs!;
        expect(young).to.be.within(0, LEASE_MS);
        const old = await waitFor(async () => {
          const age = (await store.get('age-1'))!.leaseAgeMs!;
          return age >= young + 100 ? age : undefined;
        }, 10_000, 'the lease to age');
        expect(await store.renewLeases('pod-a')).to.equal(1);
        expect((await store.get('age-1'))!.leaseAgeMs).to.be.lessThan(old);
      });

      it('creates a request id once when two creates race', async () => {
        const results = await Promise.all([store.create(snap(started('race-1'))), store.create(snap(started('race-1', { podId: 'pod-b' })))]);
        expect(results.map((r) => r.created).sort()).to.deep.equal([false, true]);
        const winner = results.find((r) => r.created)?.saga;
        expect(plain(await store.get('race-1'))).to.deep.equal(plain(winner));
        expect(plain(results.find((r) => !r.created)?.saga)).to.deep.equal(plain(winner));
      });
    });

    describe('save', () => {
      it('given only the changes (as the engine saves), still stores the whole saga', async () => {
        const saga = Saga.fromSnapshot((await store.create(snap(started('delta-1')))).saga, 'pod-a');
        saga.stepStarted('reserve');
        expect(saga.changes()).to.deep.include({ storedEvents: 1 });
        expect([...saga.changes().steps]).to.deep.equal(['reserve']);
        saga.saved(await store.save(saga.view(), saga.changes()));
        expect(saga.changes().steps.size).to.equal(0);

        saga.stepSucceeded('reserve', { orderId: 'o-1' });
        saga.stepStarted('charge');
        saga.saved(await store.save(saga.view(), saga.changes()));
        saga.stepSucceeded('charge', { paymentId: 'p-1' });
        saga.complete({ ok: true });
        expect(saga.changes().storedEvents).to.equal(4);
        expect([...saga.changes().steps]).to.deep.equal(['charge']);
        saga.saved(await store.save(saga.view(), saga.changes()));

        const stored = await store.get('delta-1');
        expect(plain(stored)).to.deep.equal(snap(saga));
        expect(stored?.steps.map((s) => [s.name, s.status, s.output])).to.deep.equal([
          ['reserve', 'SUCCEEDED', { orderId: 'o-1' }], ['charge', 'SUCCEEDED', { paymentId: 'p-1' }],
        ]);
        expect(stored?.history.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
      });

      it('writes state and steps, appends history and bumps the revision', async () => {
        const saga = Saga.fromSnapshot((await store.create(snap(started('save-1')))).saga, 'pod-a');

        saga.stepStarted('reserve');
        expect(await store.save(snap(saga))).to.equal(2);
        saga.saved(2);
        expect(plain(await store.get('save-1'))).to.deep.equal(snap(saga));

        saga.stepSucceeded('reserve', { orderId: 'o-7' });
        saga.stepStarted('charge');
        saga.stepRetrying('charge', 'payment: UNAVAILABLE', new Date(Date.now() + 1_000));
        saga.wakeAt(new Date(Date.now() + 1_000));
        expect(await store.save(snap(saga))).to.equal(3);
        saga.saved(3);
        const third = plain(await store.get('save-1'));
        expect(third).to.deep.equal(snap(saga));
        expect(third?.history.map((e) => [e.seq, e.type])).to.deep.equal([
          [1, 'SAGA_STARTED'], [2, 'STEP_STARTED'], [3, 'STEP_SUCCEEDED'], [4, 'STEP_STARTED'], [5, 'STEP_ATTEMPT_FAILED'],
        ]);

        // Another instance takes over and runs it to the end: wakeAt cleared, error set, owner changed.
        const next = Saga.fromSnapshot(snap(saga), 'pod-b');
        next.own('pod-b');
        next.wakeAt(undefined);
        next.stepStarted('charge');
        next.stepFailed('charge', 'payment: card declined');
        next.startCompensating('charge', 'card declined', 'FAILED_PRECONDITION');
        next.compensationStarted('reserve');
        next.compensationSucceeded('reserve');
        next.compensated();
        expect(await store.save(snap(next))).to.equal(4);
        next.saved(4);
        const last = plain(await store.get('save-1'));
        expect(last).to.deep.equal(snap(next));
        expect(last?.wakeAt).to.equal(undefined);
        expect(last?.history).to.have.length(11);
        expect(last?.history.slice(0, 5)).to.deep.equal(third?.history);
      });

      it('with a stale revision, throws ConcurrencyError and writes nothing', async () => {
        const created = (await store.create(snap(started('stale-1')))).saga;
        const winner = Saga.fromSnapshot(created, 'pod-a');
        const loser = Saga.fromSnapshot(created, 'pod-b');
        winner.stepStarted('reserve');
        winner.saved(await store.save(snap(winner)));

        loser.own('pod-b');
        loser.stepStarted('reserve');
        loser.stepSucceeded('reserve', { from: 'the loser' });
        loser.stepStarted('charge');
        const err = await rejectionOf(store.save(snap(loser)));
        expect(err).to.be.instanceOf(ConcurrencyError);
        expect(err).to.include({ code: 'CONFLICT', retryable: true });
        expect(plain(await store.get('stale-1'))).to.deep.equal(snap(winner));

        // Ahead of the store, or unknown: the same.
        expect(await rejectionOf(store.save({ ...snap(winner), revision: 9 }))).to.be.instanceOf(ConcurrencyError);
        expect(await rejectionOf(store.save({ ...snap(winner), requestId: 'never-created' }))).to.be.instanceOf(ConcurrencyError);
        expect(plain(await store.get('stale-1'))).to.deep.equal(snap(winner));
        expect(plain(await store.get('never-created'))).to.equal(undefined);
      });

      it('lets exactly one of two racing saves of the same revision win', async () => {
        const created = (await store.create(snap(started('race-save')))).saga;
        const a = Saga.fromSnapshot(created, 'pod-a');
        const b = Saga.fromSnapshot(created, 'pod-b');
        a.stepStarted('reserve');
        b.own('pod-b');
        b.stepStarted('reserve');
        b.stepFailed('reserve', 'b was here');
        const results = await Promise.allSettled([store.save(snap(a)), store.save(snap(b))]);
        const won = results.findIndex((r) => r.status === 'fulfilled');
        const lost = results.find((r) => r.status === 'rejected');
        expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
        expect((lost as PromiseRejectedResult).reason).to.be.instanceOf(ConcurrencyError);
        const winner = won === 0 ? a : b;
        winner.saved(2);
        expect(plain(await store.get('race-save'))).to.deep.equal(snap(winner));
      });
    });

    describe('list', () => {
      it(`pages through ${BULK} sagas newest first, with steps and no history, filtered by facade, status and time range`, async () => {
        const base = Date.UTC(2024, 0, 1);
        const at = (k: number): string => new Date(base + k * 1_000).toISOString();
        const facades = ['booking.Create', 'booking.Cancel', 'billing.Refund'];
        const statuses: SagaStatus[] = ['RUNNING', 'COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED', 'COMPENSATING'];
        const all: SagaSnapshot[] = [];
        for (let i = 0; i < BULK; i++) {
          // Three sagas share each createdAt (ties are broken by request id, desc), and request ids
          // do not follow creation order.
          const requestId = `list-${String((i * 7919) % 10007).padStart(5, '0')}`;
          const saga = snap(started(requestId, { facade: facades[Math.floor(i / 2) % 3] }));
          all.push({ ...saga, status: statuses[i % 5], createdAt: at(Math.floor(i / 3)), updatedAt: at(Math.floor(i / 3) + 1) });
        }
        await createAll(store, all);

        const stored = new Map(all.map((s) => [s.requestId, { ...s, revision: 1, history: [] }]));
        const pages = async (filter: Omit<SagaFilter, 'pageToken'>): Promise<string[]> => {
          const seen: string[] = [];
          let pageToken: string | undefined;
          let n = 0;
          do {
            const page = await store.list({ ...filter, pageToken });
            expect(page.sagas.length).to.be.at.most(filter.pageSize);
            if (page.nextPageToken) expect(page.sagas.length).to.equal(filter.pageSize);
            for (const s of page.sagas) expect(plain(s)).to.deep.equal(stored.get(s.requestId));
            seen.push(...page.sagas.map((s) => s.requestId));
            pageToken = page.nextPageToken;
            expect(++n).to.be.below(1_000);
          } while (pageToken);
          return seen;
        };
        const expected = (keep: (s: SagaSnapshot) => boolean): string[] => all.filter(keep).sort(newestFirst).map((s) => s.requestId);

        const from = at(200);
        const to = at(700);
        const cases: [Omit<SagaFilter, 'pageToken'>, (s: SagaSnapshot) => boolean][] = [
          [{ pageSize: 250 }, () => true],
          [{ pageSize: 97, facade: 'booking.Cancel' }, (s) => s.facade === 'booking.Cancel'],
          [{ pageSize: 100, status: 'COMPLETED' }, (s) => s.status === 'COMPLETED'],
          [{ pageSize: 64, createdFrom: from, createdTo: to }, (s) => s.createdAt >= from && s.createdAt < to],
          [{ pageSize: 7, facade: 'booking.Create', status: 'RUNNING', createdFrom: from }, (s) => s.facade === 'booking.Create' && s.status === 'RUNNING' && s.createdAt >= from],
          [{ pageSize: 5, createdTo: at(2) }, (s) => s.createdAt < at(2)],
          [{ pageSize: 10, facade: 'no.Such' }, () => false],
        ];
        for (const [filter, keep] of cases) {
          const want = expected(keep);
          expect(await pages(filter), JSON.stringify(filter)).to.deep.equal(want);
        }
        // The boundaries: createdFrom is inclusive, createdTo exclusive.
        expect(expected((s) => s.createdAt === from)).to.have.length(3);
        expect(await pages({ pageSize: 2, createdFrom: from, createdTo: at(201) })).to.deep.equal(expected((s) => s.createdAt === from));
      });

      it('gives no token with the last page, even a full one, and an empty page for no match', async () => {
        await createAll(store, Array.from({ length: 6 }, (_, i) => snap(started(`six-${i}`))));
        const first = await store.list({ pageSize: 3 });
        expect(first.sagas).to.have.length(3);
        expect(first.nextPageToken).to.be.a('string');
        const second = await store.list({ pageSize: 3, pageToken: first.nextPageToken });
        expect(second.sagas).to.have.length(3);
        expect(second.nextPageToken).to.equal(undefined);
        expect(ids([...first.sagas, ...second.sagas])).to.deep.equal(['six-0', 'six-1', 'six-2', 'six-3', 'six-4', 'six-5']);
        expect(plain(await store.list({ pageSize: 3, status: 'COMPENSATION_FAILED' }))).to.deep.equal({ sagas: [] });
      });

      it('rejects a bad page token with a ValidationError naming page_token', async () => {
        await store.create(snap(started('tok-1')));
        for (const pageToken of ['not a token!', Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[1,2]').toString('base64url'), 'e30']) {
          const err = await rejectionOf(store.list({ pageSize: 10, pageToken }));
          expect(err, pageToken).to.be.instanceOf(ValidationError);
          expect(err).to.include({ field: 'page_token', code: 'INVALID_ARGUMENT' });
        }
      });
    });

    it('keeps the trace context a saga started with, through saves and a claim by another instance', async () => {
      const traceParent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const saga = Saga.start({ requestId: 'trace-1', facade: 'f', version: 1, mode: 'async', input: {}, steps: ['one'], podId: 'pod-a', traceParent });
      saga.saved((await store.create(saga.view())).saga.revision);
      saga.stepStarted('one');
      saga.saved(await store.save(saga.view(), saga.changes()));
      expect((await store.get('trace-1'))!.traceParent).to.equal(traceParent);
      const claimed = await waitFor(async () => (await store.claim('pod-b', 10)).find((c) => c.requestId === 'trace-1'), 5_000, 'the lease to expire');
      expect(claimed.traceParent).to.equal(traceParent);
      // Tracing off: none stored, none read back.
      await store.create(snap(started('trace-2')));
      expect(await store.get('trace-2')).to.not.have.property('traceParent');
    });

    describe('leases', () => {
      it('claims a saga whose lease expired, once, with its history', async () => {
        const t0 = Date.now();
        const stored = (await store.create(snap(started('lease-1', { podId: 'pod-a' })))).saga;
        expect(await store.claim('pod-b', 10)).to.deep.equal([]);

        const claimed = await waitFor(async () => {
          const got = await store.claim('pod-b', 10);
          return got.length > 0 && got;
        }, 5_000, 'the lease to expire');
        expect(Date.now() - t0).to.be.at.least(LEASE_MS);
        expect(claimed.map(plain)).to.deep.equal([{ ...plain(stored), owner: 'pod-b', revision: 2, leaseLapsed: true, lapsedOwner: 'pod-a' }]);
        expect(claimed[0].history).to.have.length(1);

        // The claim renewed the lease: nobody else gets it, and the old owner is fenced off.
        expect(await store.claim('pod-c', 10)).to.deep.equal([]);
        expect(await store.claim('pod-b', 10)).to.deep.equal([]);
        // leaseLapsed and lapsedOwner are what the claim saw, not part of the saga.
        expect({ ...plain(await store.get('lease-1')), leaseLapsed: true, lapsedOwner: 'pod-a' }).to.deep.equal(plain(claimed[0]));
        expect(await rejectionOf(store.save(stored))).to.be.instanceOf(ConcurrencyError);
      });

      it('renews the lease on a save that changes the owner or the status, not on one that changes only steps', async () => {
        await store.close();
        store = await makeStore(1_000); // the two leases end 500 ms apart
        const quiet = started('lease-2', { podId: 'pod-a', steps: ['one'] });
        const moved = started('lease-3', { podId: 'pod-a', steps: ['one'] });
        for (const saga of [quiet, moved]) saga.saved((await store.create(snap(saga))).saga.revision);
        // Not a wait for something (not) to happen: it sets the two leases 500 ms apart, the window
        // in which the claims below must see one expired and not the other.
        await sleep(500);
        quiet.stepStarted('one');
        quiet.saved(await store.save(snap(quiet)));
        moved.own('pod-b');
        moved.saved(await store.save(snap(moved)));
        // The first lease ran out; only the saga whose owner changed got a new one.
        const claimed = await waitFor(async () => {
          const got = await store.claim('pod-c', 10);
          return got.length > 0 && got;
        }, 5_000, 'the first lease to expire');
        expect(claimed.map((c) => c.requestId)).to.deep.equal(['lease-2']);
      });

      it('does not claim sagas whose owner renews their leases', async () => {
        // Leases long enough that a slow machine renews them in time; the loop outlives two.
        const leaseMs = 1_000;
        await store.close();
        store = await makeStore(leaseMs);
        await createAll(store, [
          withStatus('renew-1', 'RUNNING', { owner: 'pod-a' }),
          withStatus('renew-2', 'RUNNING', { owner: 'pod-a' }),
          withStatus('renew-3', 'COMPENSATING', { owner: 'pod-a' }),
          withStatus('renew-done', 'COMPLETED', { owner: 'pod-a' }),
          withStatus('renew-other', 'RUNNING', { owner: 'pod-x' }),
        ]);
        // renew-other, created with them and renewed by nobody (pod-b claims it, then lets it go),
        // is claimed again each time a lease runs out: two claims of it, two leases gone by.
        const taken: string[] = [];
        const renewed: number[] = [];
        await waitFor(async () => {
          renewed.push(await store.renewLeases('pod-a'));
          taken.push(...ids(await store.claim('pod-b', 10)));
          return taken.filter((id) => id === 'renew-other').length >= 2;
        }, 20 * leaseMs, 'renew-other to be claimed twice');
        expect(new Set(renewed)).to.deep.equal(new Set([3]));
        expect(taken.filter((id) => id !== 'renew-other')).to.deep.equal([]);

        // pod-a stops renewing: pod-b takes its unfinished sagas over.
        const mine = new Set<string>();
        await waitFor(async () => {
          for (const id of ids(await store.claim('pod-b', 10))) if (id !== 'renew-other') mine.add(id);
          return mine.has('renew-1') && mine.has('renew-2') && mine.has('renew-3');
        }, 5_000, 'pod-b to take over');
        expect([...mine].sort()).to.deep.equal(['renew-1', 'renew-2', 'renew-3']);
        expect(await store.renewLeases('pod-a')).to.equal(0);
        expect(await store.renewLeases('pod-b')).to.equal(4);
      });

      it('claims a saga with a due wakeAt for its owner only, and before its lease expires', async () => {
        await store.close();
        store = await makeStore(60_000); // no lease expires during the test
        const past = new Date(Date.now() - 1_000).toISOString();
        const future = new Date(Date.now() + 60_000).toISOString();
        // wakeAt set on create, and set by save.
        await store.create(withStatus('wake-due', 'RUNNING', { owner: 'pod-a', wakeAt: past }));
        const later = Saga.fromSnapshot((await store.create(snap(started('wake-saved', { podId: 'pod-a' })))).saga, 'pod-a');
        later.wakeAt(new Date(past));
        later.saved(await store.save(snap(later)));
        await store.create(withStatus('wake-future', 'RUNNING', { owner: 'pod-a', wakeAt: future }));

        expect(await store.claim('pod-b', 10)).to.deep.equal([]);
        const claimed = await store.claim('pod-a', 10);
        expect(ids(claimed)).to.deep.equal(['wake-due', 'wake-saved']);
        for (const saga of claimed) {
          expect(saga.owner).to.equal('pod-a');
          expect(saga.wakeAt).to.equal(undefined);
          expect(saga.revision).to.equal(saga.requestId === 'wake-due' ? 2 : 3);
          expect(plain(await store.get(saga.requestId))).to.deep.equal(plain(saga));
        }
        // The timer is cleared: not claimed again.
        expect(await store.claim('pod-a', 10)).to.deep.equal([]);
        expect((await store.get('wake-future'))?.wakeAt).to.equal(future);
      });

      it('a saga with no owner (parked) holds no lease: never renewed or claimed as lapsed; its due timer is anyone\'s', async () => {
        const past = new Date(Date.now() - 1_000).toISOString();
        const future = new Date(Date.now() + 60_000).toISOString();
        const parked = Saga.fromSnapshot((await store.create(snap(started('parked-due', { podId: 'pod-a' })))).saga, 'pod-a');
        parked.disown();
        parked.wakeAt(new Date(future));
        parked.saved(await store.save(snap(parked)));
        const created = await store.create({ ...withStatus('parked-new', 'RUNNING', { wakeAt: future }), owner: undefined });
        expect(created.saga.leaseAgeMs).to.equal(undefined);
        expect((await store.get('parked-due'))?.owner).to.equal(undefined);
        expect((await store.get('parked-due'))?.leaseAgeMs).to.equal(undefined);
        expect(await store.renewLeases('pod-a')).to.equal(0);
        // Well past a lease's length: nothing lapses, as nothing was held.
        await sleep(LEASE_MS + 100);
        expect(await store.claim('pod-b', 10)).to.deep.equal([]);
        // Due: whichever instance claims first takes it, as its own, and not as a lapse.
        parked.wakeAt(new Date(past));
        parked.saved(await store.save(snap(parked)));
        const [claimed, ...more] = await store.claim('pod-b', 10);
        expect(more).to.deep.equal([]);
        expect(claimed.requestId).to.equal('parked-due');
        expect(claimed.owner).to.equal('pod-b');
        expect(claimed.leaseLapsed).to.equal(undefined);
        expect(await store.renewLeases('pod-b')).to.equal(1);
      });

      it('takes due timers oldest first', async () => {
        // Leases that outlive the test: what one claim took is not lapsed by the next.
        const lasting = await makeStore(60_000);
        try {
          // Created in the opposite order of their timers: a claim in storage order would take the youngest.
          const timers = Array.from({ length: 6 }, (_, i) => ({ ...withStatus(`timer-${i}`, 'RUNNING', { wakeAt: secondsAgo(10 + i) }), owner: undefined }));
          await createAll(lasting, timers);
          expect(ids(await lasting.claim('pod-a', 2))).to.deep.equal(['timer-4', 'timer-5']);
          expect(ids(await lasting.claim('pod-b', 3))).to.deep.equal(['timer-1', 'timer-2', 'timer-3']);
          expect(ids(await lasting.claim('pod-b', 3))).to.deep.equal(['timer-0']);
        } finally {
          await lasting.close();
        }
      });

      it('takes lapsed leases before due timers, and no more than the limit of both', async () => {
        await createAll(store, [{ ...withStatus('timer', 'RUNNING', { wakeAt: secondsAgo(3_600) }), owner: undefined }, withStatus('lapsing', 'RUNNING', { owner: 'pod-dead' })]);
        await waitFor(async () => (await store.get('lapsing'))!.leaseAgeMs! > LEASE_MS + 50, 20 * LEASE_MS, 'the lease to lapse');
        const [first, ...rest] = await store.claim('pod-c', 1);
        expect(rest).to.deep.equal([]);
        expect([first.requestId, first.leaseLapsed]).to.deep.equal(['lapsing', true]);
        await store.renewLeases('pod-c');
        expect(ids(await store.claim('pod-c', 5))).to.deep.equal(['timer']);
      });

      it('never claims terminal or compensation-failed sagas', async () => {
        const past = new Date(Date.now() - 1_000).toISOString();
        const statuses: SagaStatus[] = ['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'COMPENSATION_FAILED'];
        // The probe, created last and left alone, is claimed once its lease runs out: every other lease has by then.
        await createAll(store, [
          ...statuses.map((status) => withStatus(`status-${status}`, status, { owner: 'pod-a', wakeAt: past })),
          withStatus('status-probe', 'RUNNING', { owner: 'pod-x' }),
        ]);
        // Due timers: their owner takes the active ones at once, and only those.
        const claimed = ids(await store.claim('pod-a', 100));
        expect(claimed.filter((id) => id !== 'status-probe')).to.deep.equal(['status-COMPENSATING', 'status-RUNNING']);
        await waitFor(async () => {
          claimed.push(...ids(await store.claim('pod-a', 100)), ...ids(await store.claim('pod-b', 100)));
          return claimed.includes('status-probe');
        }, 20 * LEASE_MS, 'the leases to expire');
        claimed.push(...ids(await store.claim('pod-a', 100)), ...ids(await store.claim('pod-b', 100)));
        expect(claimed.filter((id) => !['status-probe', 'status-RUNNING', 'status-COMPENSATING'].includes(id))).to.deep.equal([]);
        expect(await store.renewLeases('pod-a') + await store.renewLeases('pod-b')).to.equal(3);
      });

      it('gives concurrent claimers disjoint sets, and respects the limit', async () => {
        const sagas = Array.from({ length: 40 }, (_, i) => withStatus(`many-${String(i).padStart(2, '0')}`, 'RUNNING', { owner: 'pod-dead' }));
        await createAll(store, sagas);
        // Each claim returns at most its limit, every saga it returns is its pod's; claims go on
        // (as the leases run out) until every saga is taken.
        const claimedIds: string[] = [];
        const claim = async (pod: string, limit: number) => {
          const got = await store.claim(pod, limit);
          expect(got.length, `${pod}'s claim of ${limit}`).to.be.at.most(limit);
          for (const s of got) expect(s.owner).to.equal(pod);
          claimedIds.push(...ids(got));
        };
        await waitFor(async () => {
          await claim('pod-0', 3 - claimedIds.length);
          return claimedIds.length === 3;
        }, 20 * LEASE_MS, 'pod-0 to claim three');
        await waitFor(async () => {
          await Promise.all(['pod-1', 'pod-2', 'pod-3', 'pod-4'].map((pod) => claim(pod, 10)));
          return claimedIds.length >= 40;
        }, 20 * LEASE_MS, 'every saga to be claimed');
        expect(new Set(claimedIds).size, 'no saga claimed twice').to.equal(claimedIds.length);
        expect(claimedIds.sort()).to.deep.equal(ids(sagas));
        // Their new owners are live (on a loaded machine the claims may have outlasted a lease).
        await Promise.all(['pod-0', 'pod-1', 'pod-2', 'pod-3', 'pod-4'].map((pod) => store.renewLeases(pod)));
        expect(await store.claim('pod-5', 100)).to.deep.equal([]);
      });
    });

    it('close() can be called twice', async () => {
      await store.close();
      await store.close();
    });
  });
}

contract('MemorySagaStore', async (leaseTtlMs) => new MemorySagaStore(leaseTtlMs));

describe('PostgresSagaStore', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let admin: Pool | undefined;
  before(async () => {
    db = await freshDatabase();
    admin = new Pool({ connectionString: db.dsn, max: 2 });
  });
  after(async () => {
    await admin?.end();
    await db?.drop();
  });

  const open = (dsn: string, leaseTtlMs = LEASE_MS): Promise<PostgresSagaStore> =>
    PostgresSagaStore.create({ dsn, poolSize: 10, leaseTtlMs, connectTimeoutMs: 5_000 }, silentLogger);

  contract('PostgresSagaStore', async (leaseTtlMs) => {
    const store = await open(db!.dsn, leaseTtlMs);
    await admin!.query('TRUNCATE saga_events, saga_steps, sagas');
    return store;
  });

  it('records its migrations in schema_migrations; migrating again applies nothing', async () => {
    const store = await open(db!.dsn);
    try {
      const ledger = async (): Promise<unknown[]> => (await admin!.query<{ id: number; name: string }>('SELECT id, name FROM schema_migrations ORDER BY id')).rows;
      const want = MIGRATIONS.map((m) => ({ id: m.id, name: m.name }));
      expect(await ledger()).to.deep.equal(want);
      expect(await migrate(admin!, silentLogger)).to.deep.equal([]);
      expect(await ledger()).to.deep.equal(want);
    } finally {
      await store.close();
    }
  });

  it('starts on a fresh database from several processes at once', async () => {
    const fresh = await freshDatabase();
    const stores: PostgresSagaStore[] = [];
    try {
      stores.push(...await Promise.all([open(fresh.dsn), open(fresh.dsn), open(fresh.dsn)]));
      const pool = new Pool({ connectionString: fresh.dsn, max: 1 });
      try {
        const { rows } = await pool.query('SELECT id FROM schema_migrations ORDER BY id');
        expect(rows.map((r: { id: number }) => r.id)).to.deep.equal(MIGRATIONS.map((m) => m.id));
      } finally {
        await pool.end();
      }
      const saga = snap(started('fresh-1'));
      await stores[0].create(saga);
      expect(plain(await stores[2].get('fresh-1'))).to.deep.equal({ ...saga, revision: 1 });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await fresh.drop();
    }
  });

  it('keeps a save on the primary key as the table grows past the plan it cached when small', async () => {
    const fresh = await freshDatabase();
    const store = await PostgresSagaStore.create({ dsn: fresh.dsn, poolSize: 1, leaseTtlMs: 10_000 }, silentLogger);
    try {
      // Seven saves on a tiny table: the connection caches a generic plan for them.
      for (let i = 0; i < 7; i++) {
        const saga = Saga.fromSnapshot((await store.create(snap(started(`small-${i}`)))).saga, 'pod-a');
        saga.stepStarted('reserve');
        saga.saved(await store.save(saga.view(), saga.changes()));
      }
      await createAll(store, Array.from({ length: 3000 }, (_, i) => snap(started(`big-${i}`))));
      // The store's only connection, where that plan is cached (as the engine's saves would find it).
      const pool = (store as unknown as { pool: Pool }).pool;
      const stored = (await store.get('small-0'))!;
      const json = JSON.stringify([{ request_id: 'small-0', revision: stored.revision, status: 'RUNNING', owner: 'pod-a', updated_at: stored.updatedAt, steps: [], events: [] }]);
      // EXPLAIN EXECUTE takes no bind parameters: the JSON (no quotes in it) goes in as a literal.
      const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE saga_save('${json}', 10000)`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).to.match(/Index Scan using sagas_pkey on sagas/);
      expect(plan).not.to.match(/Seq Scan on sagas/);
    } finally {
      await store.close();
      await fresh.drop();
    }
  });

  it('plans through indexes on every pooled connection, set in its startup packet, along with options the DSN carries', async () => {
    const planner = `SELECT name, setting, source FROM pg_settings WHERE name IN ('enable_seqscan', 'enable_hashjoin', 'enable_mergejoin', 'jit', 'work_mem') ORDER BY name`;
    // 'client': from the connection's startup options; a SET query afterwards would say 'session'.
    const off = (name: string) => ({ name, setting: 'off', source: 'client' });
    const withOptions = new URL(db!.dsn);
    withOptions.searchParams.set('options', '-c work_mem=8MB');
    for (const dsn of [db!.dsn, withOptions.toString()]) {
      const store = await PostgresSagaStore.create({ dsn, poolSize: 4, leaseTtlMs: 10_000 }, silentLogger);
      try {
        const pool = (store as unknown as { pool: Pool }).pool;
        // Four connections at once: each a new one, as the pool opens them under load.
        const clients = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
        try {
          for (const client of clients) {
            const rows = (await client.query<{ name: string; setting: string; source: string }>(planner)).rows;
            expect(rows.slice(0, 4), dsn).to.deep.equal([off('enable_hashjoin'), off('enable_mergejoin'), off('enable_seqscan'), off('jit')]);
            if (dsn !== db!.dsn) expect(rows[4]).to.deep.equal({ name: 'work_mem', setting: '8192', source: 'client' });
          }
        } finally {
          for (const client of clients) client.release();
        }
      } finally {
        await store.close();
      }
    }
  });

  it('queues no query on a busy connection under concurrent load (no pg DeprecationWarning)', async () => {
    // In a process of its own: Node reports a deprecation once per process, whichever test hit it first.
    const script = `
      const { PostgresSagaStore } = require(process.env.STORE_JS);
      const { silentLogger } = require(process.env.LOGGER_JS);
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.name + ': ' + w.message));
      (async () => {
        const store = await PostgresSagaStore.create({ dsn: process.env.DSN, poolSize: 10, leaseTtlMs: 10000 }, silentLogger);
        await Promise.all(Array.from({ length: 300 }, (_, i) =>
          [() => store.list({ pageSize: 5 }), () => store.renewLeases('pod-w'), () => store.claim('pod-w', 5), () => store.get('w-' + i)][i % 4]()));
        await store.close();
        setImmediate(() => process.stdout.write(JSON.stringify(warnings)));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const dist = path.resolve(__dirname, '../../src');
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      env: { ...process.env, DSN: db!.dsn, STORE_JS: path.join(dist, 'store/postgres/postgres-store.js'), LOGGER_JS: path.join(dist, 'engine/logger.js'), NODE_OPTIONS: '' },
    });
    expect(JSON.parse(stdout)).to.deep.equal([]);
  });

  it('rejects malformed createdFrom/createdTo with a ValidationError', async () => {
    const store = await open(db!.dsn);
    try {
      expect(await rejectionOf(store.list({ pageSize: 5, createdFrom: 'yesterday' }))).to.include({ field: 'created_from', code: 'INVALID_ARGUMENT' });
      expect(await rejectionOf(store.list({ pageSize: 5, createdTo: '2024-13-45' }))).to.include({ field: 'created_to', code: 'INVALID_ARGUMENT' });
    } finally {
      await store.close();
    }
  });

  describe('when Postgres goes away', function () {
    this.timeout(120_000);
    const server = new ThrowawayPostgres();
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (message) => { warnings.push(message); }, child: () => log };
    let store: PostgresSagaStore | undefined;
    before(async () => { await server.start(); });
    after(async () => {
      await store?.close();
      await server.destroy();
    });

    it('fails fast with StoreUnavailableError, and works again once it is back, with the same store', async () => {
      store = await PostgresSagaStore.create({ dsn: server.dsn, poolSize: 4, leaseTtlMs: 10_000, connectTimeoutMs: 1_000 }, log);
      const saga = Saga.fromSnapshot((await store.create(snap(started('outage-1')))).saga, 'pod-a');
      saga.stepStarted('reserve');
      saga.saved(await store.save(snap(saga)));

      await server.stop();
      const s = store;
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => s.get('outage-1')],
        ['save', () => s.save(snap(saga))],
        ['create', () => s.create(snap(started('outage-2')))],
        ['list', () => s.list({ pageSize: 10 })],
        ['claim', () => s.claim('pod-a', 10)],
        ['renewLeases', () => s.renewLeases('pod-a')],
      ];
      for (const [what, call] of calls) {
        const t0 = Date.now();
        const err = await rejectionOf(call());
        expect(err, what).to.be.instanceOf(StoreUnavailableError);
        expect(err, what).to.include({ code: 'UNAVAILABLE', retryable: true });
        // Generous: it only tells failing at once from waiting for the server to come back.
        expect(Date.now() - t0, what).to.be.below(15_000);
      }
      // The pooled connections the shutdown broke were reported, not thrown.
      expect(warnings).to.include('idle postgres connection failed; the pool will replace it');
      // Nor does a store start without it.
      expect(await rejectionOf(PostgresSagaStore.create({ dsn: server.dsn, poolSize: 1, leaseTtlMs: 1_000, connectTimeoutMs: 1_000 }, log)))
        .to.be.instanceOf(StoreUnavailableError);

      await server.start();
      expect(plain(await waitFor(() => s.get('outage-1'), 15_000, 'the store to recover'))).to.deep.equal(snap(saga));
      expect(await s.save(snap(saga))).to.equal(3);
      expect((await s.list({ pageSize: 10 })).sagas.map((x) => x.requestId)).to.deep.equal(['outage-1']);
    });
  });
});
