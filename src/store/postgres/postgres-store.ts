import { Client, Pool, type QueryConfig, type QueryResultRow } from 'pg';
import { ConcurrencyError, ensureError, StoreUnavailableError, ValidationError } from '../../engine/errors';
import type { Logger } from '../../engine/logger';
import type { SagaEvent, SagaMode, SagaSnapshot, SagaStatus, StepState, StepStatus } from '../../engine/saga';
import type { StoreMetrics } from '../../engine/metrics';
import type { SagaChanges, SagaFilter, SagaPage, SagaStore, StoreGauges } from '../../engine/store';
import { decodePageToken, encodePageToken } from '../page-token';
import { Batcher, type FlushResult } from '../../lib/batcher';
import { migrate } from './migrate';
import { PodLock } from './pod-lock';

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

/** A row of sagas, with its steps (and events) aggregated as JSON tuples: one round trip per read. */
interface SagaRow extends QueryResultRow {
  request_id: string;
  facade: string;
  version: number;
  mode: SagaMode;
  status: SagaStatus;
  revision: number;
  owner: string | null;
  deadline: Date | null;
  wake_at: Date | null;
  /** jsonb as text, so that SQL NULL (absent) and JSON null stay apart. */
  input: string | null;
  output: string | null;
  error: string | null;
  error_code: string | null;
  trace_parent: string | null;
  created_at: Date;
  updated_at: Date;
  lease_left_ms: number;
  /** claim() only: the lease had lapsed, and whose it was. */
  lapsed?: boolean;
  former_owner?: string | null;
  steps: StepTuple[] | null;
  history?: EventTuple[] | null;
}

/** Timestamps inside json are ISO 8601 strings with an offset; output is jsonb as text. */
type StepTuple = [name: string, status: StepStatus, attempts: number, compensationAttempts: number, output: string | null, error: string | null, startedAt: string | null, endedAt: string | null, runner: string | null, wakeAt: string | null];
type EventTuple = [seq: number, at: string, type: string, step: string | null, detail: string | null, podId: string | null];

const ACTIVE = `('RUNNING', 'COMPENSATING')`;
const LEASE = (param: string): string => `now() + ${param}::double precision * interval '1 millisecond'`;

const SAGA_COLUMNS = `
  s.request_id, s.facade, s.version, s.mode, s.status, s.revision, s.owner, s.deadline, s.wake_at,
  s.input::text AS input, s.output::text AS output, s.error, s.error_code, s.trace_parent, s.created_at, s.updated_at,
  (extract(epoch from s.lease_expires_at - now()) * 1000)::float8 AS lease_left_ms`;
const STEPS_OF_S = `
  (SELECT json_agg(json_build_array(t.name, t.status, t.attempts, t.compensation_attempts, t.output::text, t.error, t.started_at, t.ended_at, t.runner, t.wake_at)
                   ORDER BY t.position)
     FROM saga_steps t WHERE t.request_id = s.request_id) AS steps`;
const HISTORY_OF_S = `
  (SELECT json_agg(json_build_array(e.seq, e.at, e.type, e.step, e.detail, e.pod_id) ORDER BY e.seq)
     FROM saga_events e WHERE e.request_id = s.request_id) AS history`;

/** The columns of a step and of an event, as they travel inside a jsonb parameter. */
const STEP_RECORD = `position integer, name text, status text, attempts integer, compensation_attempts integer,
  output text, error text, started_at timestamptz, ended_at timestamptz, runner text, wake_at timestamptz`;
const EVENT_RECORD = `seq integer, at timestamptz, type text, step text, detail text, pod_id text`;

const INSERT_STEPS = `
  INSERT INTO saga_steps AS t (request_id, position, name, status, attempts, compensation_attempts, output, error, started_at, ended_at, runner, wake_at)
  SELECT saga.request_id, x.position, x.name, x.status, x.attempts, x.compensation_attempts, x.output::jsonb, x.error, x.started_at, x.ended_at, x.runner, x.wake_at
    FROM saga JOIN i ON i.request_id = saga.request_id CROSS JOIN LATERAL jsonb_to_recordset(i.steps) AS x(${STEP_RECORD})`;
const INSERT_EVENTS = `
  INSERT INTO saga_events (request_id, seq, at, type, step, detail, pod_id)
  SELECT saga.request_id, e.seq, e.at, e.type, e.step, e.detail, e.pod_id
    FROM saga JOIN i ON i.request_id = saga.request_id CROSS JOIN LATERAL jsonb_to_recordset(i.events) AS e(${EVENT_RECORD})`;

/**
 * create, for a batch of sagas ($1, a jsonb array): one statement. A saga row is inserted unless
 * its request id exists; steps and events are inserted only alongside it (they join the saga CTE).
 */
const CREATE_SQL = `
WITH i AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
    request_id text, facade text, version integer, mode text, status text, input text, output text, error text, error_code text,
    deadline timestamptz, owner text, wake_at timestamptz, trace_parent text, created_at timestamptz, updated_at timestamptz, steps jsonb, events jsonb)
), saga AS (
  INSERT INTO sagas (request_id, facade, version, mode, status, input, output, error, error_code, deadline, owner,
                     lease_expires_at, wake_at, trace_parent, revision, created_at, updated_at)
  SELECT i.request_id, i.facade, i.version, i.mode, i.status, i.input::jsonb, i.output::jsonb, i.error, i.error_code, i.deadline, i.owner,
         ${LEASE('$2')}, i.wake_at, i.trace_parent, 1, i.created_at, i.updated_at
    FROM i
  ON CONFLICT (request_id) DO NOTHING
  RETURNING request_id
), steps AS (${INSERT_STEPS}
), events AS (${INSERT_EVENTS}
)
SELECT request_id FROM saga`;

/**
 * save, for a batch of sagas ($1, a jsonb array, one entry per request id): one statement. The
 * fenced UPDATE returns a row only for sagas whose stored revision is the expected one; the step
 * upsert and the event append join it, so they write nothing for the others. The engine sends only
 * the steps and events that changed; unchanged steps are not rewritten and stored events are kept
 * in any case. The lease is renewed only when the status or the owner changes (the owner's
 * heartbeat renews it otherwise): most saves then change no indexed column, and Postgres updates
 * the row in place (HOT).
 */
const SAVE_SQL = `
WITH i AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
    request_id text, revision integer, status text, output text, error text, error_code text, owner text, wake_at timestamptz,
    updated_at timestamptz, steps jsonb, events jsonb)
), saga AS (
  UPDATE sagas s
     SET status = i.status, output = i.output::jsonb, error = i.error, error_code = i.error_code, owner = i.owner, wake_at = i.wake_at,
         updated_at = i.updated_at, revision = s.revision + 1,
         lease_expires_at = CASE WHEN (s.status, s.owner) IS DISTINCT FROM (i.status, i.owner) THEN ${LEASE('$2')}
                                 ELSE s.lease_expires_at END
    FROM i
   WHERE s.request_id = i.request_id AND s.revision = i.revision
  RETURNING s.request_id, s.revision
), steps AS (${INSERT_STEPS}
  ON CONFLICT (request_id, name) DO UPDATE
     SET position = excluded.position, status = excluded.status, attempts = excluded.attempts,
         compensation_attempts = excluded.compensation_attempts, output = excluded.output, error = excluded.error,
         started_at = excluded.started_at, ended_at = excluded.ended_at, runner = excluded.runner, wake_at = excluded.wake_at
   WHERE (t.position, t.status, t.attempts, t.compensation_attempts, t.output, t.error, t.started_at, t.ended_at, t.runner, t.wake_at)
         IS DISTINCT FROM
         (excluded.position, excluded.status, excluded.attempts, excluded.compensation_attempts, excluded.output, excluded.error,
          excluded.started_at, excluded.ended_at, excluded.runner, excluded.wake_at)
), events AS (${INSERT_EVENTS}
  ON CONFLICT (request_id, seq) DO NOTHING
)
SELECT request_id, revision FROM saga`;

const GET_SQL = `SELECT ${SAGA_COLUMNS}, ${STEPS_OF_S}, ${HISTORY_OF_S} FROM sagas s WHERE s.request_id = ANY($1::text[])`;

/**
 * Renewal takes no row lock it would have to wait for: SKIP LOCKED passes over the rows a save holds
 * at that moment (renewed at the next heartbeat, well within the TTL). Waiting instead, with saves
 * locking several sagas in their own order, deadlocked: Postgres then stalls both for
 * deadlock_timeout (1 s) before breaking the cycle.
 */
const RENEW_SQL = `
WITH mine AS (
  SELECT request_id FROM sagas
   WHERE owner = $1 AND status IN ${ACTIVE} AND request_id <> ALL($3::text[])
   ORDER BY request_id
   FOR UPDATE SKIP LOCKED
)
UPDATE sagas s SET lease_expires_at = ${LEASE('$2')} FROM mine WHERE s.request_id = mine.request_id`;

/** As renewal: never waits for a row lock (a row a save holds keeps its lease until it lapses). */
const RELEASE_SQL = `
WITH mine AS (
  SELECT request_id FROM sagas WHERE owner = $1 AND status IN ${ACTIVE} ORDER BY request_id FOR UPDATE SKIP LOCKED
)
UPDATE sagas s SET lease_expires_at = now() - interval '1 millisecond' FROM mine WHERE s.request_id = mine.request_id`;

/** Through sagas_status_list_idx, one status at a time. */
const COUNT_UNFINISHED_SQL = `
SELECT facade, version, count(*)::int AS sagas FROM sagas
 WHERE status IN ('RUNNING', 'COMPENSATING', 'COMPENSATION_FAILED')
 GROUP BY facade, version`;

const COUNT_BY_STATUS_SQL = 'SELECT facade, version, status, count(*)::int AS sagas FROM sagas GROUP BY facade, version, status';

/** The fingerprint stored for a facade version, inserted first if there is none. */
const PIN_VERSION_SQL = `
WITH ins AS (
  INSERT INTO facade_versions (facade, version, fingerprint, first_seen) VALUES ($1, $2, $3, now())
  ON CONFLICT (facade, version) DO NOTHING
  RETURNING fingerprint
)
SELECT fingerprint FROM ins UNION ALL SELECT fingerprint FROM facade_versions WHERE facade = $1 AND version = $2 LIMIT 1`;

/**
 * The metrics' gauges in one statement: unfinished sagas (the status index), the parked visits of
 * the running ones (their steps by primary key: the cost grows with unfinished sagas, not with
 * the finished ones), due timers (the wake_at index). Nothing is locked or written. A node's
 * visits are parked one at a time (a loop comes back to it after the last visit ended), so
 * counting visits counts sagas.
 */
const GAUGES_SQL = `
SELECT 'sagas' AS kind, facade, version, status, NULL AS node, count(*)::int AS n FROM sagas
 WHERE status IN ('RUNNING', 'COMPENSATING', 'COMPENSATION_FAILED') GROUP BY facade, version, status
UNION ALL
SELECT 'parked', s.facade, s.version, st.status, split_part(st.name, '#', 1), count(*)::int
  FROM sagas s JOIN saga_steps st ON st.request_id = s.request_id
 WHERE s.status = 'RUNNING' AND st.status IN ('WAITING', 'RETRYING')
 GROUP BY s.facade, s.version, st.status, split_part(st.name, '#', 1)
UNION ALL
SELECT 'timers', '', 0, '', NULL, count(*)::int FROM sagas WHERE wake_at <= now() AND status IN ${ACTIVE}
UNION ALL
SELECT 'overdue', '', 0, '', NULL, count(*)::int FROM sagas
 WHERE wake_at < now() - $1::double precision * interval '1 millisecond' AND status IN ${ACTIVE}`;

/** SKIP LOCKED: concurrent claimers pass over each other's rows, so they get disjoint sets. */
const CLAIM_SQL = `
WITH due AS (
  SELECT request_id, owner AS former_owner, lease_expires_at < now() AS lapsed FROM sagas
   WHERE status IN ${ACTIVE}
     AND (lease_expires_at < now() OR (wake_at <= now() AND owner = $1))
     AND ($4::text[] IS NULL OR facade || '@' || version = ANY($4::text[]))
   LIMIT $2
   FOR UPDATE SKIP LOCKED
), s AS (
  UPDATE sagas u
     SET owner = $1, wake_at = NULL, lease_expires_at = ${LEASE('$3')}, revision = u.revision + 1
    FROM due
   WHERE u.request_id = due.request_id
  RETURNING u.*, due.lapsed, due.former_owner
)
SELECT ${SAGA_COLUMNS}, s.lapsed, s.former_owner, ${STEPS_OF_S}, ${HISTORY_OF_S} FROM s`;

/**
 * Every statement here finds its rows through an index, by request id or by an indexed range. A
 * prepared statement's plan is cached from when the tables were small, where a sequential scan
 * and a hash join win, and kept as they grow until an ANALYZE (a save then scanned every saga:
 * 12 ms at 20,000 sagas, instead of 0.5 ms). With these off, plans use the indexes at any size.
 */
const INDEX_ONLY_PLANS = '-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off';

/**
 * Connection settings that carry INDEX_ONLY_PLANS in each connection's startup packet (`options`),
 * so that no query of their own is queued ahead of the pool's first one. pg takes `options` from the
 * DSN over the config, and from PGOPTIONS only when the config has none: either is kept, after ours
 * (a setting given there wins).
 */
export function indexOnlyPlansConnection(dsn: string, env: NodeJS.ProcessEnv = process.env): { connectionString: string; options: string } {
  return {
    // Spaces as %20, '=' as is: pg re-encodes a DSN holding a space or a stray '%' with encodeURI.
    connectionString: dsn.replace(/([?&])options=/, `$1options=${INDEX_ONLY_PLANS.replaceAll(' ', '%20')}%20`),
    options: [INDEX_ONLY_PLANS, env.PGOPTIONS].filter(Boolean).join(' '),
  };
}

/** Socket-level failures: the database is unreachable, not wrong. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = [
  'Connection terminated', // "... unexpectedly", "... due to connection timeout"
  'timeout exceeded when trying to connect', // pg-pool: no connection within connectionTimeoutMillis
  'is not queryable', // a client whose connection already failed
];

/**
 * True when `err` means Postgres cannot be reached (or is shutting down / starting up): SQLSTATE
 * class 08 (connection exception) and 57P0x (admin/crash shutdown, cannot connect now), socket
 * errors and the pg driver's own connection failures.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_ERRNOS.has(code) || /^08[0-9A-Z]{3}$/.test(code) || /^57P0\d$/.test(code))) return true;
  if (CONNECTION_MESSAGES.some((m) => err.message.includes(m))) return true;
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return err.cause !== undefined && err.cause !== err && isConnectionError(err.cause);
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
    const values: unknown[] = [];
    const param = (value: unknown): string => `$${values.push(value)}`;
    const where: string[] = [];
    if (filter.facade) where.push(`s.facade = ${param(filter.facade)}`);
    if (filter.status) where.push(`s.status = ${param(filter.status)}`);
    if (filter.createdFrom) where.push(`s.created_at >= ${param(timestamp(filter.createdFrom, 'created_from'))}::timestamptz`);
    if (filter.createdTo) where.push(`s.created_at < ${param(timestamp(filter.createdTo, 'created_to'))}::timestamptz`);
    if (filter.pageToken) {
      const after = decodePageToken(filter.pageToken);
      const at = timestamp(after.createdAt, 'page_token');
      where.push(`(s.created_at, s.request_id) < (${param(at)}::timestamptz, ${param(after.requestId)}::text COLLATE "C")`);
    }
    const text = `
      SELECT ${SAGA_COLUMNS}, ${STEPS_OF_S}
        FROM sagas s
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY s.created_at DESC, s.request_id DESC
       LIMIT ${param(filter.pageSize + 1)}`;
    const { rows } = await this.query<SagaRow>({ text, values }, 'list');
    const sagas = rows.slice(0, filter.pageSize).map((r) => toSnapshot(r, this.leaseTtlMs));
    const last = sagas[sagas.length - 1];
    return { sagas, nextPageToken: rows.length > filter.pageSize ? encodePageToken(last.createdAt, last.requestId) : undefined };
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
    type Row = { kind: string; facade: string; version: number; status: string; node: string | null; n: number };
    const { rows } = await this.query<Row>({ name: 'saga_gauges', text: GAUGES_SQL, values: [overdueMs] }, 'gauges');
    return {
      sagas: rows.filter((r) => r.kind === 'sagas').map((r) => ({ facade: r.facade, version: r.version, status: r.status as SagaStatus, sagas: r.n })),
      parked: rows.filter((r) => r.kind === 'parked')
        .map((r) => ({ facade: r.facade, version: r.version, node: r.node!, status: r.status as 'WAITING' | 'RETRYING', sagas: r.n })),
      timersDue: rows.find((r) => r.kind === 'timers')?.n ?? 0,
      timersOverdue: rows.find((r) => r.kind === 'overdue')?.n ?? 0,
    };
  }

  async countByStatus(): Promise<{ facade: string; version: number; status: SagaStatus; sagas: number }[]> {
    const { rows } = await this.query<{ facade: string; version: number; status: SagaStatus; sagas: number }>({ name: 'count_by_status', text: COUNT_BY_STATUS_SQL }, 'countByStatus');
    return rows;
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

/** Connection failures become StoreUnavailableError (retryable); anything else is left as it is. */
function translate(err: unknown, what: string): Error {
  if (isConnectionError(err)) return new StoreUnavailableError(`${what}: ${ensureError(err).message}`, { cause: err });
  return ensureError(err);
}

/** A jsonb parameter: JSON text, or SQL NULL for undefined (JSON null stays JSON null). */
function jsonParam(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/**
 * A batch whose statement fails for a reason other than the connection is retried saga by saga,
 * so that one saga the database refuses fails alone.
 */
async function isolated<T, R>(items: T[], flush: (items: T[]) => Promise<FlushResult<R>>): Promise<FlushResult<R>> {
  try {
    return await flush(items);
  } catch (err) {
    if (items.length === 1 || err instanceof StoreUnavailableError) throw err;
    return Promise.all(items.map((item) => flush([item]).then((r) => r[0], (e: unknown) => ensureError(e))));
  }
}

/** A create or save waiting for its batch, already serialised. */
interface Write {
  requestId: string;
  revision: number;
  json: string;
}

/** In request id order: every statement that locks several saga rows locks them in that one order. */
function jsonArray(writes: Write[]): string {
  const sorted = writes.length > 1 ? [...writes].sort((a, b) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0)) : writes;
  return `[${sorted.map((w) => w.json).join(',')}]`;
}

function createRecord(saga: Readonly<SagaSnapshot>) {
  return {
    request_id: saga.requestId, facade: saga.facade, version: saga.version, mode: saga.mode, status: saga.status,
    input: jsonParam(saga.input), output: jsonParam(saga.output), error: saga.error, error_code: saga.errorCode, deadline: saga.deadline, owner: saga.owner,
    wake_at: saga.wakeAt, trace_parent: saga.traceParent, created_at: saga.createdAt, updated_at: saga.updatedAt,
    steps: saga.steps.map(stepRecord), events: saga.history.map(eventRecord),
  };
}

/** Only what changed, when the engine says what did: fewer bytes to send and for Postgres to parse. */
function saveRecord(saga: Readonly<SagaSnapshot>, changes?: SagaChanges) {
  const steps = saga.steps.map(stepRecord);
  return {
    request_id: saga.requestId, revision: saga.revision, status: saga.status, output: jsonParam(saga.output), error: saga.error, error_code: saga.errorCode,
    owner: saga.owner, wake_at: saga.wakeAt, updated_at: saga.updatedAt,
    steps: changes ? steps.filter((s) => changes.steps.has(s.name)) : steps,
    events: saga.history.slice(changes?.storedEvents ?? 0).map(eventRecord),
  };
}

function stepRecord(s: StepState, position: number) {
  return {
    position,
    name: s.name,
    status: s.status,
    attempts: s.attempts,
    compensation_attempts: s.compensationAttempts,
    // jsonb_to_recordset turns a JSON null into SQL NULL: the output travels as JSON text.
    output: jsonParam(s.output),
    error: s.error,
    started_at: s.startedAt,
    ended_at: s.endedAt,
    runner: s.runner,
    wake_at: s.wakeAt,
  };
}

function eventRecord(e: SagaEvent) {
  return { seq: e.seq, at: e.at, type: e.type, step: e.step, detail: e.detail, pod_id: e.podId };
}

function timestamp(value: string, field: string): string {
  if (Number.isNaN(Date.parse(value))) throw new ValidationError(field, `not an ISO 8601 timestamp: ${value}`);
  return value;
}

/** The engine writes millisecond ISO strings (toISOString()); Postgres keeps microseconds, so they come back equal. */
function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** Columns that are NULL become absent keys (undefined), never null: snapshots stay plain JSON. */
function toSnapshot(row: SagaRow, leaseTtlMs: number): SagaSnapshot {
  const saga = {
    requestId: row.request_id,
    facade: row.facade,
    version: row.version,
    mode: row.mode,
    status: row.status,
    revision: row.revision,
  } as SagaSnapshot;
  if (row.owner !== null) saga.owner = row.owner;
  if (row.deadline !== null) saga.deadline = iso(row.deadline);
  if (row.wake_at !== null) saga.wakeAt = iso(row.wake_at);
  if (row.input !== null) saga.input = JSON.parse(row.input);
  if (row.output !== null) saga.output = JSON.parse(row.output);
  if (row.error !== null) saga.error = row.error;
  if (row.error_code !== null) saga.errorCode = row.error_code;
  if (row.trace_parent !== null) saga.traceParent = row.trace_parent;
  saga.steps = (row.steps ?? []).map(toStep);
  saga.history = (row.history ?? []).map(toEvent);
  saga.leaseAgeMs = Math.max(0, Math.round(leaseTtlMs - row.lease_left_ms));
  if (row.lapsed) saga.leaseLapsed = true;
  if (row.lapsed && row.former_owner) saga.lapsedOwner = row.former_owner;
  saga.createdAt = iso(row.created_at);
  saga.updatedAt = iso(row.updated_at);
  return saga;
}

function toStep([name, status, attempts, compensationAttempts, output, error, startedAt, endedAt, runner, wakeAt]: StepTuple): StepState {
  const step: StepState = { name, status, attempts, compensationAttempts };
  if (output !== null) step.output = JSON.parse(output);
  if (error !== null) step.error = error;
  if (startedAt !== null) step.startedAt = iso(startedAt);
  if (endedAt !== null) step.endedAt = iso(endedAt);
  if (runner !== null) step.runner = runner;
  if (wakeAt !== null && wakeAt !== undefined) step.wakeAt = iso(wakeAt);
  return step;
}

function toEvent([seq, at, type, step, detail, podId]: EventTuple): SagaEvent {
  const event: SagaEvent = { seq, at: iso(at), type };
  if (step !== null) event.step = step;
  if (detail !== null) event.detail = detail;
  if (podId !== null) event.podId = podId;
  return event;
}
