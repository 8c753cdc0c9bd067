/**
 * The Postgres schema, as an append-only list: migrate() applies, in id order, the migrations not
 * yet recorded in schema_migrations. Never edit or remove a migration that has been released;
 * change the schema by appending a new one.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'sagas, steps and events',
    sql: `
      -- request_id compares byte-wise (COLLATE "C") whatever the database's locale, so that the
      -- order of list() and its page tokens does not depend on where the database runs.
      CREATE TABLE sagas (
        request_id       text COLLATE "C" PRIMARY KEY,
        facade           text        NOT NULL,
        version          integer     NOT NULL,
        mode             text        NOT NULL,
        status           text        NOT NULL,
        input            jsonb,
        output           jsonb,
        error            text,
        deadline         timestamptz,
        owner            text,
        lease_expires_at timestamptz NOT NULL,
        wake_at          timestamptz,
        revision         integer     NOT NULL,
        created_at       timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL
      );

      CREATE TABLE saga_steps (
        request_id            text COLLATE "C" NOT NULL REFERENCES sagas (request_id) ON DELETE CASCADE,
        position              integer NOT NULL,
        name                  text    NOT NULL,
        status                text    NOT NULL,
        attempts              integer NOT NULL,
        compensation_attempts integer NOT NULL,
        output                jsonb,
        error                 text,
        started_at            timestamptz,
        ended_at              timestamptz,
        PRIMARY KEY (request_id, name)
      );

      -- Append-only: rows are inserted, never updated.
      CREATE TABLE saga_events (
        request_id text COLLATE "C" NOT NULL REFERENCES sagas (request_id) ON DELETE CASCADE,
        seq        integer     NOT NULL,
        at         timestamptz NOT NULL,
        type       text        NOT NULL,
        step       text,
        detail     text,
        pod_id     text,
        PRIMARY KEY (request_id, seq)
      );

      -- list(): newest first, keyset paging on (created_at, request_id); and the same by facade, by status.
      CREATE INDEX sagas_list_idx ON sagas (created_at DESC, request_id DESC);
      CREATE INDEX sagas_facade_list_idx ON sagas (facade, created_at DESC, request_id DESC);
      CREATE INDEX sagas_status_list_idx ON sagas (status, created_at DESC, request_id DESC);
      -- claim(): unfinished sagas whose lease has expired ...
      CREATE INDEX sagas_claim_idx ON sagas (lease_expires_at) WHERE status IN ('RUNNING', 'COMPENSATING');
      -- ... or whose durable timer is due.
      CREATE INDEX sagas_wake_at_idx ON sagas (wake_at) WHERE wake_at IS NOT NULL;
    `,
  },
  {
    id: 2,
    name: 'cheaper writes: no foreign keys, room for HOT updates',
    sql: `
      -- A foreign key costs a lookup and a row lock on sagas for every step and event inserted.
      -- The store inserts them only in the statement that wrote their saga row (they join it), so
      -- they cannot dangle; sagas are never deleted.
      ALTER TABLE saga_steps DROP CONSTRAINT IF EXISTS saga_steps_request_id_fkey;
      ALTER TABLE saga_events DROP CONSTRAINT IF EXISTS saga_events_request_id_fkey;
      -- Free space in each page: an update that changes no indexed column stays in its page (a HOT
      -- update) and touches no index, as most saves of a running saga do.
      ALTER TABLE sagas SET (fillfactor = 70);
      ALTER TABLE saga_steps SET (fillfactor = 70);
    `,
  },
  {
    id: 3,
    name: 'the error code of an aborted saga',
    sql: `
      -- Every caller of a request id is answered with the code the first one got (UNAVAILABLE,
      -- DEADLINE_EXCEEDED, CANCELLED, ...), not with one guessed from the error's wording.
      ALTER TABLE sagas ADD COLUMN error_code text;
    `,
  },
  {
    id: 4,
    name: 'who took a step attempt from its message',
    sql: `
      -- The process that runs a step attempt another one recorded: if it dies, the attempt may have
      -- run, and whoever runs it again records a new attempt rather than reusing this one.
      ALTER TABLE saga_steps ADD COLUMN runner text;
    `,
  },
  {
    id: 5,
    name: 'a timer per node visit',
    sql: `
      -- Flow graphs: each visit of a wait, sleep or external step has its own timer (timeout, end of
      -- the sleep, next retry); sagas.wake_at is the earliest of them, for claim().
      ALTER TABLE saga_steps ADD COLUMN wake_at timestamptz;
    `,
  },
  {
    id: 6,
    name: 'the graph of each facade version',
    sql: `
      -- Stored the first time a version runs: a process whose definition of that version differs
      -- (a flow changed without a new version number) refuses to start.
      CREATE TABLE facade_versions (
        facade      text COLLATE "C" NOT NULL,
        version     integer NOT NULL,
        fingerprint text    NOT NULL,
        first_seen  timestamptz NOT NULL,
        PRIMARY KEY (facade, version)
      );
    `,
  },
  {
    id: 7,
    name: 'the trace context of each saga',
    sql: `
      -- The W3C traceparent of the call that started the saga: an instance that takes it over
      -- (after a crash, a timer, an event) records its spans in the same trace. NULL: tracing was off.
      ALTER TABLE sagas ADD COLUMN trace_parent text;
    `,
  },
  {
    id: 8,
    name: 'parked sagas hold no lease',
    sql: `
      -- A saga parked on a wait, a sleep or an external step's reply has no owner and no lease
      -- (NULL): no heartbeat writes it, and whoever moves it on (an event, its due timer) takes one.
      ALTER TABLE sagas ALTER COLUMN lease_expires_at DROP NOT NULL;
    `,
  },
  {
    id: 9,
    name: 'a listing index for facade and status together',
    sql: `
      -- list() with a facade and a status: each of the indexes of migration 1 gives one of them in
      -- keyset order and filters the other out row by row, reading every saga of the facade (or
      -- status) to fill a page of a rare pair. Every filter combination now has an index whose
      -- equality columns come first and whose order is the keyset's: none, facade, status, both;
      -- a created_at range is a range on the next column of the same index.
      -- Built inside the migration's transaction: writes to sagas wait for it (seconds at 1,000,000 sagas).
      CREATE INDEX sagas_facade_status_list_idx ON sagas (facade, status, created_at DESC, request_id DESC);
    `,
  },
  {
    id: 10,
    name: 'upkeep of the hot tables',
    sql: `
      -- Autovacuum's defaults wait for dead rows to reach 20 % of a table (200,000 at 1,000,000
      -- sagas) and analyse at 10 %: bloat and stale plans in between. These tables are updated (sagas,
      -- saga_steps) or appended to (saga_events) all day: vacuum and analyse them after
      -- 2 % (5 % of inserts for the visibility map and freezing of the append-only rows). Setting
      -- these takes no lock that blocks reads or writes. Fillfactor (room for HOT updates) is set on
      -- the updated tables since migration 2; saga_events is never updated: full pages.
      ALTER TABLE sagas SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
      ALTER TABLE saga_steps SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
      ALTER TABLE saga_events SET (fillfactor = 100, autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05, autovacuum_analyze_threshold = 1000);
    `,
  },
  {
    id: 11,
    name: 'retention: when each saga finished',
    sql: `
      -- Retention deletes the oldest finished sagas of each facade (a facade may keep its own
      -- retention) in small keyset batches, by the time they finished. Not updated_at: every save
      -- changes it, and an index on it would make every save a non-HOT update. finished_at is set
      -- once, by the save that ends the saga, which changes the (indexed) status anyway.
      ALTER TABLE sagas ADD COLUMN finished_at timestamptz;
      UPDATE sagas SET finished_at = updated_at WHERE status IN ('COMPLETED', 'COMPENSATED');
      -- A trigger rather than the save statement: it fires only when the status changes (the WHEN
      -- clause is checked without calling the function), a few times in a saga's life.
      CREATE FUNCTION sagas_set_finished_at() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.finished_at := CASE WHEN NEW.status IN ('COMPLETED', 'COMPENSATED') THEN coalesce(NEW.finished_at, NEW.updated_at) END;
        RETURN NEW;
      END $$;
      CREATE TRIGGER sagas_finished_at_on_update BEFORE UPDATE OF status ON sagas
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION sagas_set_finished_at();
      CREATE TRIGGER sagas_finished_at_on_insert BEFORE INSERT ON sagas
        FOR EACH ROW WHEN (NEW.status IN ('COMPLETED', 'COMPENSATED')) EXECUTE FUNCTION sagas_set_finished_at();
      -- Partial: unfinished sagas, the ones the live path writes, are not in it. COMPENSATION_FAILED
      -- is kept for an operator, so not in it either.
      CREATE INDEX sagas_finished_idx ON sagas (facade, finished_at, request_id) WHERE status IN ('COMPLETED', 'COMPENSATED');
    `,
  },
];
