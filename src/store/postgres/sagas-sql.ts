import type { SagaEvent, SagaSnapshot, StepState } from '../../engine/saga';
import type { SagaChanges } from '../../engine/store';
import { LEASE } from './leases-sql';
import { HISTORY_OF_S, SAGA_COLUMNS, STEPS_OF_S } from './rows';

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
export const CREATE_SQL = `
WITH i AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
    request_id text, facade text, version integer, mode text, status text, input text, output text, error text, error_code text,
    deadline timestamptz, owner text, wake_at timestamptz, trace_parent text, created_at timestamptz, updated_at timestamptz, steps jsonb, events jsonb)
), saga AS (
  INSERT INTO sagas (request_id, facade, version, mode, status, input, output, error, error_code, deadline, owner,
                     lease_expires_at, wake_at, trace_parent, revision, created_at, updated_at)
  SELECT i.request_id, i.facade, i.version, i.mode, i.status, i.input::jsonb, i.output::jsonb, i.error, i.error_code, i.deadline, i.owner,
         CASE WHEN i.owner IS NULL THEN NULL ELSE ${LEASE('$2')} END, i.wake_at, i.trace_parent, 1, i.created_at, i.updated_at
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
 * the row in place (HOT). A saga saved with no owner (parked) holds no lease.
 */
export const SAVE_SQL = `
WITH i AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
    request_id text, revision integer, status text, output text, error text, error_code text, owner text, wake_at timestamptz,
    updated_at timestamptz, steps jsonb, events jsonb)
), saga AS (
  UPDATE sagas s
     SET status = i.status, output = i.output::jsonb, error = i.error, error_code = i.error_code, owner = i.owner, wake_at = i.wake_at,
         updated_at = i.updated_at, revision = s.revision + 1,
         lease_expires_at = CASE WHEN i.owner IS NULL THEN NULL
                                 WHEN (s.status, s.owner) IS DISTINCT FROM (i.status, i.owner) THEN ${LEASE('$2')}
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

export const GET_SQL = `SELECT ${SAGA_COLUMNS}, ${STEPS_OF_S}, ${HISTORY_OF_S} FROM sagas s WHERE s.request_id = ANY($1::text[])`;

/** The fingerprint stored for a facade version, inserted first if there is none. */
export const PIN_VERSION_SQL = `
WITH ins AS (
  INSERT INTO facade_versions (facade, version, fingerprint, first_seen) VALUES ($1, $2, $3, now())
  ON CONFLICT (facade, version) DO NOTHING
  RETURNING fingerprint
)
SELECT fingerprint FROM ins UNION ALL SELECT fingerprint FROM facade_versions WHERE facade = $1 AND version = $2 LIMIT 1`;

/** A jsonb parameter: JSON text, or SQL NULL for undefined (JSON null stays JSON null). */
function jsonParam(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function createRecord(saga: Readonly<SagaSnapshot>) {
  return {
    request_id: saga.requestId, facade: saga.facade, version: saga.version, mode: saga.mode, status: saga.status,
    input: jsonParam(saga.input), output: jsonParam(saga.output), error: saga.error, error_code: saga.errorCode, deadline: saga.deadline, owner: saga.owner,
    wake_at: saga.wakeAt, trace_parent: saga.traceParent, created_at: saga.createdAt, updated_at: saga.updatedAt,
    steps: saga.steps.map(stepRecord), events: saga.history.map(eventRecord),
  };
}

/** Only what changed, when the engine says what did: fewer bytes to send and for Postgres to parse. */
export function saveRecord(saga: Readonly<SagaSnapshot>, changes?: SagaChanges) {
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
