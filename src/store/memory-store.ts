import { ConcurrencyError } from '../engine/errors';
import { ACTIVE_STATUSES, nodeOf, TERMINAL_STATUSES, type SagaSnapshot, type SagaStatus } from '../engine/saga';
import type { PurgeBatch, PurgeResult, SagaChanges, SagaFilter, SagaPage, SagaStore, StoreGauges } from '../engine/store';
import { decodePageToken, encodePageToken } from './page-token';

/** Code-point order, as Postgres' "C" collation: the same order the page tokens compare with. */
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface Row {
  saga: SagaSnapshot;
  /** Absent: no owner, no lease (a parked saga). */
  leaseExpiresAt?: number;
}

/** The lease goes with the owner: a saga nobody owns (parked) holds none. */
const leaseFor = (saga: Readonly<SagaSnapshot>, ttlMs: number): number | undefined => (saga.owner === undefined ? undefined : Date.now() + ttlMs);

/**
 * The embedded default: sagas live as long as the process, finished ones until retention deletes
 * them (as on Postgres: the engine's retention loop calls purgeFinished). Same contract as the Postgres store
 * (fencing, leases, idempotent create); copies on the way in and out, like a real store.
 */
export class MemorySagaStore implements SagaStore {
  private readonly rows = new Map<string, Row>();

  constructor(private readonly leaseTtlMs = 10_000) {}

  async create(saga: Readonly<SagaSnapshot>): Promise<{ created: boolean; saga: SagaSnapshot }> {
    const existing = this.rows.get(saga.requestId);
    if (existing) return { created: false, saga: this.read(existing) };
    const stored = { ...structuredClone(saga), revision: 1 };
    delete stored.leaseAgeMs;
    delete stored.leaseLapsed;
    delete stored.lapsedOwner;
    this.rows.set(saga.requestId, { saga: stored, leaseExpiresAt: leaseFor(saga, this.leaseTtlMs) });
    return { created: true, saga: structuredClone(stored) };
  }

  async get(requestId: string): Promise<SagaSnapshot | undefined> {
    const row = this.rows.get(requestId);
    return row && this.read(row);
  }

  private read(row: Row): SagaSnapshot {
    const saga = structuredClone(row.saga);
    if (row.leaseExpiresAt !== undefined) saga.leaseAgeMs = this.leaseTtlMs - (row.leaseExpiresAt - Date.now());
    return saga;
  }

  /** Keeps a whole copy: `changes` is of no use here. */
  async save(saga: Readonly<SagaSnapshot>, _changes?: SagaChanges): Promise<number> {
    const row = this.rows.get(saga.requestId);
    if (!row || row.saga.revision !== saga.revision) throw new ConcurrencyError(saga.requestId, saga.revision);
    if (row.saga.status !== saga.status || row.saga.owner !== saga.owner) row.leaseExpiresAt = leaseFor(saga, this.leaseTtlMs);
    row.saga = { ...structuredClone(saga), revision: saga.revision + 1 };
    delete row.saga.leaseAgeMs; // read-only: filled in on reads
    delete row.saga.leaseLapsed;
    delete row.saga.lapsedOwner;
    return row.saga.revision;
  }

  async list(filter: SagaFilter): Promise<SagaPage> {
    const after = filter.pageToken ? decodePageToken(filter.pageToken) : undefined;
    const matching = [...this.rows.values()]
      .map((r) => r.saga)
      .filter((s) => (!filter.facade || s.facade === filter.facade) && (!filter.status || s.status === filter.status))
      .filter((s) => (!filter.createdFrom || s.createdAt >= filter.createdFrom) && (!filter.createdTo || s.createdAt < filter.createdTo))
      .sort((a, b) => (a.createdAt === b.createdAt ? cmp(b.requestId, a.requestId) : cmp(b.createdAt, a.createdAt)))
      .filter((s) => !after || s.createdAt < after.createdAt || (s.createdAt === after.createdAt && s.requestId < after.requestId));
    const page = matching.slice(0, filter.pageSize).map((s) => ({ ...structuredClone(s), history: [] }));
    const last = page[page.length - 1];
    return { sagas: page, nextPageToken: matching.length > filter.pageSize ? encodePageToken(last.createdAt, last.requestId) : undefined };
  }

  async renewLeases(owner: string, except: readonly string[] = []): Promise<number> {
    let n = 0;
    for (const row of this.rows.values()) {
      if (row.saga.owner === owner && ACTIVE_STATUSES.includes(row.saga.status) && !except.includes(row.saga.requestId)) {
        row.leaseExpiresAt = Date.now() + this.leaseTtlMs;
        n++;
      }
    }
    return n;
  }

  async countUnfinished(): Promise<{ facade: string; version: number; sagas: number }[]> {
    const counts = new Map<string, { facade: string; version: number; sagas: number }>();
    for (const { saga } of this.rows.values()) {
      if (TERMINAL_STATUSES.includes(saga.status)) continue;
      const key = `${saga.facade}@${saga.version}`;
      const c = counts.get(key) ?? { facade: saga.facade, version: saga.version, sagas: 0 };
      c.sagas++;
      counts.set(key, c);
    }
    return [...counts.values()];
  }

  async gauges(overdueMs: number): Promise<StoreGauges> {
    const sagas = new Map<string, StoreGauges['sagas'][number]>();
    const parked = new Map<string, StoreGauges['parked'][number]>();
    const out: StoreGauges = { sagas: [], parked: [], timersDue: 0, timersOverdue: 0 };
    const now = Date.now();
    for (const { saga } of this.rows.values()) {
      if (TERMINAL_STATUSES.includes(saga.status)) continue;
      const key = `${saga.facade}@${saga.version}@${saga.status}`;
      const c = sagas.get(key) ?? { facade: saga.facade, version: saga.version, status: saga.status, sagas: 0 };
      c.sagas++;
      sagas.set(key, c);
      if (saga.wakeAt && ACTIVE_STATUSES.includes(saga.status)) {
        const late = now - Date.parse(saga.wakeAt);
        if (late >= 0) out.timersDue++;
        if (late > overdueMs) out.timersOverdue++;
      }
      if (saga.status !== 'RUNNING') continue;
      const seen = new Set<string>();
      for (const v of saga.steps) {
        if (v.status !== 'WAITING' && v.status !== 'RETRYING') continue;
        const pkey = `${saga.facade}@${saga.version}@${nodeOf(v.name)}@${v.status}`;
        if (seen.has(pkey)) continue;
        seen.add(pkey);
        const p = parked.get(pkey) ?? { facade: saga.facade, version: saga.version, node: nodeOf(v.name), status: v.status, sagas: 0 };
        p.sagas++;
        parked.set(pkey, p);
      }
    }
    out.sagas = [...sagas.values()];
    out.parked = [...parked.values()];
    return out;
  }

  async countByStatus(): Promise<{ facade: string; version: number; status: SagaStatus; sagas: number }[]> {
    const counts = new Map<string, { facade: string; version: number; status: SagaStatus; sagas: number }>();
    for (const { saga: { facade, version, status } } of this.rows.values()) {
      const key = `${facade}@${version}/${status}`;
      const c = counts.get(key) ?? counts.set(key, { facade, version, status, sagas: 0 }).get(key)!;
      c.sagas++;
    }
    return [...counts.values()];
  }

  async releaseLeases(owner: string): Promise<number> {
    let n = 0;
    for (const row of this.rows.values()) {
      if (row.saga.owner !== owner || !ACTIVE_STATUSES.includes(row.saga.status) || row.leaseExpiresAt === undefined) continue;
      row.leaseExpiresAt = Date.now() - 1;
      n++;
    }
    return n;
  }

  private readonly fingerprints = new Map<string, string>();

  async pinVersion(facade: string, version: number, fingerprint: string): Promise<string> {
    const key = `${facade}@${version}`;
    if (!this.fingerprints.has(key)) this.fingerprints.set(key, fingerprint);
    return this.fingerprints.get(key)!;
  }

  /** As on Postgres: lapsed leases first, then due timers, each oldest first. */
  async claim(owner: string, limit: number, versions?: readonly string[]): Promise<SagaSnapshot[]> {
    const now = Date.now();
    const lapsed: [number, Row, true][] = [];
    const timers: [number, Row, false][] = [];
    for (const row of this.rows.values()) {
      const { saga } = row;
      if (!ACTIVE_STATUSES.includes(saga.status)) continue;
      if (versions && !versions.includes(`${saga.facade}@${saga.version}`)) continue;
      if (row.leaseExpiresAt !== undefined && row.leaseExpiresAt <= now) lapsed.push([row.leaseExpiresAt, row, true]);
      // A due timer is its owner's to fire, or anyone's when the saga has none (parked).
      else if (saga.wakeAt !== undefined && Date.parse(saga.wakeAt) <= now && (saga.owner === owner || saga.owner === undefined)) timers.push([Date.parse(saga.wakeAt), row, false]);
    }
    const oldest = (a: [number, Row, boolean], b: [number, Row, boolean]) => a[0] - b[0];
    const claimed: SagaSnapshot[] = [];
    for (const [, row, wasLapsed] of [...lapsed.sort(oldest), ...timers.sort(oldest)].slice(0, limit)) {
      const { saga } = row;
      row.saga = { ...saga, owner, wakeAt: undefined, revision: saga.revision + 1 };
      row.leaseExpiresAt = now + this.leaseTtlMs;
      claimed.push({ ...structuredClone(row.saga), leaseAgeMs: 0, ...(wasLapsed ? { leaseLapsed: true, lapsedOwner: saga.owner } : {}) });
    }
    return claimed;
  }

  async finishedFacades(): Promise<string[]> {
    const facades = new Set<string>();
    for (const { saga } of this.rows.values()) if (TERMINAL_STATUSES.includes(saga.status)) facades.add(saga.facade);
    return [...facades];
  }

  /** A finished saga is written no more: its updatedAt is when it finished. One process: no lock to take. */
  async purgeFinished(batch: PurgeBatch): Promise<PurgeResult> {
    const before = batch.before.getTime();
    let deleted = 0;
    for (const [id, { saga }] of this.rows) {
      if (deleted >= batch.limit) break;
      if (saga.facade !== batch.facade || !TERMINAL_STATUSES.includes(saga.status) || Date.parse(saga.updatedAt) >= before) continue;
      this.rows.delete(id);
      deleted++;
    }
    return { deleted, taken: deleted };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
