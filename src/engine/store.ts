import type { SagaSnapshot, SagaStatus } from './saga';

export interface SagaFilter {
  facade?: string;
  status?: SagaStatus;
  /** Inclusive lower and exclusive upper bound on createdAt (ISO 8601). */
  createdFrom?: string;
  createdTo?: string;
  pageSize: number;
  /** Opaque, from a previous page's nextPageToken. */
  pageToken?: string;
}

export interface SagaPage {
  /** Newest first (createdAt desc, then requestId desc); history left empty. */
  sagas: SagaSnapshot[];
  /** Absent on the last page. */
  nextPageToken?: string;
}

/** Counts for the metrics' gauges, read at scrape time: the store holds every instance's sagas. */
export interface StoreGauges {
  /** Unfinished sagas (RUNNING, COMPENSATING, COMPENSATION_FAILED) by facade, version and status. */
  sagas: { facade: string; version: number; status: SagaStatus; sagas: number }[];
  /**
   * RUNNING sagas with a visit of `node` parked: WAITING (a wait, race, sleep, or external step
   * waiting for its reply) or RETRYING (until its next attempt). A saga parked at two nodes counts under each.
   */
  parked: { facade: string; version: number; node: string; status: 'WAITING' | 'RETRYING'; sagas: number }[];
  /** RUNNING or COMPENSATING sagas whose timer is due, and due for longer than `overdueMs`. */
  timersDue: number;
  timersOverdue: number;
}

/** One batch of retention: see SagaStore.purgeFinished. */
export interface PurgeBatch {
  facade: string;
  before: Date;
  limit: number;
  after?: PurgeCursor;
}

/** Where a batch stopped, in the store's order (opaque to the caller). */
export interface PurgeCursor {
  finishedAt: string;
  requestId: string;
}

export interface PurgeResult {
  deleted: number;
  /** Sagas the batch took (deleted, or gone already): fewer than `limit` means the facade is done. */
  taken: number;
  last?: PurgeCursor;
}

/** What changed in a saga since it was read or last written at its revision. */
export interface SagaChanges {
  /** History events [0, storedEvents) are stored already. */
  storedEvents: number;
  /** Names of the steps whose state changed. */
  steps: ReadonlySet<string>;
}

/**
 * Where sagas live. Every write is fenced: save() succeeds only if the stored revision is the one
 * the caller read, so two instances can never both drive a saga. Leases say which instance
 * drives an unfinished saga; the store stamps them with its own clock (now + leaseTtlMs) on
 * create, renew, claim, and a save that changes the status or the owner.
 */
export interface SagaStore {
  /**
   * Inserts a new saga (revision 0 -> stored as 1). When the request id exists, inserts nothing and
   * returns the stored saga with created=false: the request id is the idempotency key.
   * `saga` may be the engine's live state: a store reads it before returning and copies what it keeps.
   */
  create(saga: Readonly<SagaSnapshot>): Promise<{ created: boolean; saga: SagaSnapshot }>;
  get(requestId: string): Promise<SagaSnapshot | undefined>;
  /**
   * Writes status, output, error, owner, wakeAt and steps, appends the history events not yet
   * stored (by seq), renews the lease if the status or the owner changed, and returns the new
   * revision (saga.revision + 1).
   * Throws ConcurrencyError when the stored revision is not saga.revision. As with create(), the
   * store reads `saga` before returning and copies what it keeps. `changes`, when given, lets the
   * store write only the steps and events that changed (the revision fence makes that safe).
   */
  save(saga: Readonly<SagaSnapshot>, changes?: SagaChanges): Promise<number>;
  list(filter: SagaFilter): Promise<SagaPage>;
  /**
   * Extends the lease of every unfinished saga owned by `owner` (a process incarnation), except the
   * request ids in `except` (sagas it gave up on); returns how many. It never waits for a row a save
   * holds: such a saga is renewed at the next call.
   */
  renewLeases(owner: string, except?: readonly string[]): Promise<number>;
  /**
   * Ends the leases of every unfinished saga `owner` holds (it is shutting down): other instances
   * take them over at once instead of when they lapse. Returns how many.
   */
  releaseLeases(owner: string): Promise<number>;
  /**
   * Takes over up to `limit` unfinished sagas whose lease has expired, or whose wakeAt is due and
   * that `owner` owns: sets owner, clears wakeAt, renews the lease, bumps the revision, and returns
   * them (with history). `versions` (`facade@version`), when given: only sagas of those; the
   * others are left to an instance that has their version.
   */
  claim(owner: string, limit: number, versions?: readonly string[]): Promise<SagaSnapshot[]>;
  /**
   * The graph fingerprint stored for a facade version: the one given, stored now if the version
   * had none. A version whose graph changed without a new version number is refused at start-up.
   */
  pinVersion(facade: string, version: number, fingerprint: string): Promise<string>;
  /** How many unfinished sagas (RUNNING, COMPENSATING, COMPENSATION_FAILED) run on each facade version. */
  countUnfinished(): Promise<{ facade: string; version: number; sagas: number }[]>;
  /**
   * The gauges' counts. Postgres: they may be a few seconds old (recounted in the background, see
   * BackgroundRead: a count grows with the sagas, and keeping counts would cost every save).
   */
  gauges(overdueMs: number): Promise<StoreGauges>;
  /** How many sagas of each facade version are in each status (the console's facades page). Postgres: recounted in the background, a few seconds old. */
  countByStatus(): Promise<{ facade: string; version: number; status: SagaStatus; sagas: number }[]>;
  /**
   * Refuses (FAILED_PRECONDITION) a second live instance under a pod id in use: leases and step
   * messages tell an earlier run of this pod from another pod by the pod id. Held until close();
   * absent where one process is the only instance (the embedded store).
   */
  holdPodId?(podId: string): Promise<void>;
  /**
   * Facades with at least one finished saga (COMPLETED, COMPENSATED): what a retention pass walks.
   * Absent on a store that keeps nothing to purge.
   */
  finishedFacades?(): Promise<string[]>;
  /**
   * Deletes, with their steps and events, up to `limit` finished sagas (COMPLETED, COMPENSATED;
   * never COMPENSATION_FAILED, which an operator must still see) of `facade` that finished before
   * `before`, oldest first, after `after` (the `last` of the previous batch). Never waits for a
   * row another statement holds. Undefined when another instance is purging (it holds the
   * store's retention lock): the caller leaves the work to it.
   */
  purgeFinished?(batch: PurgeBatch): Promise<PurgeResult | undefined>;
  /** Resolves when the store answers (a readiness probe); throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
