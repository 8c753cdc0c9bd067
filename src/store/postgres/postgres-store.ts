import { Client, Pool, type QueryConfig, type QueryResultRow } from 'pg';
import { ConcurrencyError, ensureError } from '../../engine/errors';
import type { Logger } from '../../engine/logger';
import type { SagaSnapshot, SagaStatus } from '../../engine/saga';
import type { StoreMetrics } from '../../engine/metrics';
import type { PurgeBatch, PurgeResult, SagaChanges, SagaFilter, SagaPage, SagaStore, StoreGauges } from '../../engine/store';
import { Batcher, type FlushResult } from '../../lib/batcher';
import { isolated, jsonArray, type Write } from './batching';
import { indexOnlyPlansConnection, isConnectionError, translate } from './connection';
import { BackgroundRead, COUNT_BY_STATUS_SQL, COUNT_UNFINISHED_BY_STATUS_SQL, COUNT_UNFINISHED_SQL, PARKED_AND_TIMERS_SQL, toGauges, type CountRow, type GaugeRow } from './gauges';
import { CLAIM_SQL, RELEASE_SQL, RENEW_SQL } from './leases-sql';
import { listQuery, toPage } from './listing';
import { migrate } from './migrate';
import { PodLock } from './pod-lock';
import { finishedFacades, purgeFinished } from './retention';
import { toSnapshot, type SagaRow } from './rows';
import { warnOfMissingUpkeep } from './upkeep';
import { CREATE_SQL, createRecord, GET_SQL, PIN_VERSION_SQL, SAVE_SQL, saveRecord } from './sagas-sql';

// The SQL lives by concern: sagas-sql (create, get, save), leases-sql (renew, release, claim),
// listing, gauges, rows (reading a row back), connection (settings, errors), batching, upkeep.
export { indexOnlyPlansConnection, isConnectionError } from './connection';

/** The parked and timer gauges are recounted at most this often (more seldom when a count takes long). */
const GAUGES_REFRESH_MS = 5_000;

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  dsn: string;
  poolSize: number;
  /** How long a lease lasts; stamped by Postgres' clock (now() + leaseTtlMs). */
  leaseTtlMs: number;
  /** How long to wait for a connection (new or from the pool) before failing with StoreUnavailableError. */
  connectTimeoutMs?: number;
  /** Most sagas one batched create, get or save carries (default 200). */
  maxBatch?: number;
  /**
   * Most batched statements of one kind (create, get, save) running at once (default 2). Fewer,
   * larger batches cost Postgres less than many small ones; a lone call never waits for a batch.
   */
  maxInFlight?: number;
  /** Where each statement's latency and each group commit's size are reported. */
  metrics?: StoreMetrics;
}

/**
 * SagaStore on Postgres: one round trip per operation (a single SQL statement each), fenced writes
 * on sagas.revision, leases stamped by the database's clock. Behaves as MemorySagaStore does.
 */
export class PostgresSagaStore implements SagaStore {
  private ending: Promise<void> | undefined;
  // Concurrent creates, gets and saves share round trips (group commit): see Batcher.
  private readonly creates: Batcher<Write, boolean>;
  private readonly gets: Batcher<string, SagaSnapshot | undefined>;
  private readonly saves: Batcher<Write, number>;
  private podLock?: Promise<PodLock>;
  // Parked visits and due timers: counted from the sagas, too costly for every scrape (see BackgroundRead).
  private readonly parkedAndTimers: BackgroundRead<number, GaugeRow[]>;
  private readonly unfinishedByStatus: BackgroundRead<number, CountRow[]>;
  private readonly byStatus: BackgroundRead<number, CountRow[]>;

  private constructor(
    private readonly pool: Pool,
    private readonly leaseTtlMs: number,
    batch: { maxBatch: number; maxInFlight: number },
    private readonly connect: () => Client,
    private readonly log: Logger,
    private readonly metrics?: StoreMetrics,
  ) {
    const bySaga = { ...batch, key: (w: Write) => w.requestId };
    this.creates = new Batcher((sagas) => isolated(sagas, (b) => this.flushCreates(b)), bySaga);
    this.gets = new Batcher((ids) => isolated(ids, (b) => this.flushGets(b)), { ...batch, key: (id: string) => id });
    this.saves = new Batcher((sagas) => isolated(sagas, (b) => this.flushSaves(b)), bySaga);
    this.parkedAndTimers = new BackgroundRead(
      async (overdueMs) => (await this.query<GaugeRow>({ name: 'saga_parked_and_timers', text: PARKED_AND_TIMERS_SQL, values: [overdueMs] }, 'gauges')).rows,
      GAUGES_REFRESH_MS,
      (err) => log.warn('the parked and timer gauges could not be refreshed; the last values stay', { error: ensureError(err).message }));
    const counted = (name: string, text: string) => new BackgroundRead<number, CountRow[]>(
      async () => (await this.query<CountRow>({ name, text }, 'gauges')).rows,
      GAUGES_REFRESH_MS,
      (err) => log.warn('saga counts could not be refreshed; the last values stay', { error: ensureError(err).message }));
    this.unfinishedByStatus = counted('count_unfinished_by_status', COUNT_UNFINISHED_BY_STATUS_SQL);
    this.byStatus = counted('count_by_status', COUNT_BY_STATUS_SQL);
  }

  /** Connects, brings the schema up to date (see migrate()), and returns the store. */
  static async create(opts: PostgresStoreOptions, log: Logger): Promise<PostgresSagaStore> {
    const pool = new Pool({
      ...indexOnlyPlansConnection(opts.dsn),
      max: opts.poolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      keepAlive: true,
      application_name: 'saga-orchestrator',
    });
    // An idle connection that breaks (Postgres restarted, network cut) is reported here and
    // dropped by the pool, which opens new ones on demand. Unhandled, it would crash the process.
    pool.on('error', (err) => {
      log.warn('idle postgres connection failed; the pool will replace it', { error: err.message, code: (err as { code?: unknown }).code });
    });
    try {
      await migrate(pool, log);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw translate(err, 'migrating the schema');
    }
    await warnOfMissingUpkeep(pool, log);
    log.info('postgres saga store ready', { poolSize: opts.poolSize, leaseTtlMs: opts.leaseTtlMs });
    const connect = () => new Client({ ...indexOnlyPlansConnection(opts.dsn), connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000, keepAlive: true, application_name: 'saga-orchestrator pod lock' });
    return new PostgresSagaStore(pool, opts.leaseTtlMs, {
      maxBatch: opts.maxBatch ?? 200,
      maxInFlight: opts.maxInFlight ?? 2,
    }, connect, log, opts.metrics);
  }

  async create(saga: Readonly<SagaSnapshot>): Promise<{ created: boolean; saga: SagaSnapshot }> {
    // Serialised now: the caller may change `saga` once this returns, before the batch leaves.
    if (await this.creates.submit({ requestId: saga.requestId, revision: 0, json: JSON.stringify(createRecord(saga)) })) return { created: true, saga: { ...structuredClone(saga), revision: 1 } };
    const stored = await this.get(saga.requestId);
    if (!stored) throw new Error(`saga ${saga.requestId} exists but could not be read back`);
    return { created: false, saga: stored };
  }

  get(requestId: string): Promise<SagaSnapshot | undefined> {
    return this.gets.submit(requestId);
  }

  save(saga: Readonly<SagaSnapshot>, changes?: SagaChanges): Promise<number> {
    return this.saves.submit({ requestId: saga.requestId, revision: saga.revision, json: JSON.stringify(saveRecord(saga, changes)) });
  }

  async list(filter: SagaFilter): Promise<SagaPage> {
    const { rows } = await this.query<SagaRow>(listQuery(filter), 'list');
    return toPage(rows, filter, this.leaseTtlMs);
  }

  async renewLeases(owner: string, except: readonly string[] = []): Promise<number> {
    const result = await this.query({ name: 'saga_renew_leases', text: RENEW_SQL, values: [owner, this.leaseTtlMs, except] }, 'renewLeases');
    return result.rowCount ?? 0;
  }

  async countUnfinished(): Promise<{ facade: string; version: number; sagas: number }[]> {
    const { rows } = await this.query<{ facade: string; version: number; sagas: number }>({ name: 'count_unfinished', text: COUNT_UNFINISHED_SQL }, 'countUnfinished');
    return rows;
  }

  async gauges(overdueMs: number): Promise<StoreGauges> {
    const [counts, rows] = await Promise.all([
      this.unfinishedByStatus.get(0),
      this.parkedAndTimers.get(overdueMs),
    ]);
    return toGauges(counts, rows);
  }

  async countByStatus(): Promise<{ facade: string; version: number; status: SagaStatus; sagas: number }[]> {
    return this.byStatus.get(0);
  }

  async releaseLeases(owner: string): Promise<number> {
    const result = await this.query({ name: 'saga_release_leases', text: RELEASE_SQL, values: [owner] }, 'releaseLeases');
    return result.rowCount ?? 0;
  }

  async claim(owner: string, limit: number, versions?: readonly string[]): Promise<SagaSnapshot[]> {
    const { rows } = await this.query<SagaRow>({ name: 'saga_claim', text: CLAIM_SQL, values: [owner, limit, this.leaseTtlMs, versions ?? null] }, 'claim');
    return rows.map((r) => toSnapshot(r, this.leaseTtlMs));
  }

  async pinVersion(facade: string, version: number, fingerprint: string): Promise<string> {
    const { rows } = await this.query<{ fingerprint: string }>({ name: 'pin_version', text: PIN_VERSION_SQL, values: [facade, version, fingerprint] }, 'pinVersion');
    return rows[0].fingerprint;
  }

  private async flushCreates(sagas: Write[]): Promise<FlushResult<boolean>> {
    this.metrics?.batch('create', sagas.length);
    const { rows } = await this.query<{ request_id: string }>({
      name: 'saga_create',
      text: CREATE_SQL,
      values: [jsonArray(sagas), this.leaseTtlMs],
    }, 'create');
    const created = new Set(rows.map((r) => r.request_id));
    return sagas.map((s) => created.has(s.requestId));
  }

  private async flushGets(ids: string[]): Promise<FlushResult<SagaSnapshot | undefined>> {
    this.metrics?.batch('get', ids.length);
    const { rows } = await this.query<SagaRow>({ name: 'saga_get', text: GET_SQL, values: [ids] }, 'get');
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    return ids.map((id) => {
      const row = byId.get(id);
      return row && toSnapshot(row, this.leaseTtlMs);
    });
  }

  private async flushSaves(sagas: Write[]): Promise<FlushResult<number>> {
    this.metrics?.batch('save', sagas.length);
    const { rows } = await this.query<{ request_id: string; revision: number }>({
      name: 'saga_save',
      text: SAVE_SQL,
      values: [jsonArray(sagas), this.leaseTtlMs],
    }, 'save');
    const revisions = new Map(rows.map((r) => [r.request_id, r.revision]));
    return sagas.map((s) => revisions.get(s.requestId) ?? new ConcurrencyError(s.requestId, s.revision));
  }

  /** Retention: see retention.ts. */
  finishedFacades(): Promise<string[]> {
    return finishedFacades(this.pool, this.metrics).catch((err: unknown) => { throw translate(err, 'finishedFacades'); });
  }

  purgeFinished(batch: PurgeBatch): Promise<PurgeResult | undefined> {
    return purgeFinished(this.pool, batch, this.metrics).catch((err: unknown) => { throw translate(err, 'purgeFinished'); });
  }

  /** One live instance per pod id on this database (see PodLock); again from the same store: no effect. */
  async holdPodId(podId: string): Promise<void> {
    this.podLock ??= PodLock.acquire(this.connect, podId, this.log).catch((err: unknown) => {
      this.podLock = undefined;
      throw isConnectionError(err) ? translate(err, 'locking the pod id') : err;
    });
    await this.podLock;
  }

  /** Ends the pool (waits for checked-out connections to be released) and lets the pod id go. Safe to call twice. */
  async close(): Promise<void> {
    this.ending ??= Promise.all([this.pool.end(), this.podLock?.then((l) => l.release(), () => undefined)]).then(() => undefined);
    await this.ending;
  }

  async ping(): Promise<void> {
    await this.query({ text: 'SELECT 1' }, 'ping');
  }

  private async query<R extends QueryResultRow>(config: QueryConfig, what: string) {
    const started = this.metrics && process.hrtime.bigint();
    let ok = false;
    try {
      const result = await this.pool.query<R>(config);
      ok = true;
      return result;
    } catch (err) {
      throw translate(err, what);
    } finally {
      if (started) this.metrics.operation(what, Number(process.hrtime.bigint() - started) / 1e9, ok);
    }
  }
}
