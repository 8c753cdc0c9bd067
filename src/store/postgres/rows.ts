import type { QueryResultRow } from 'pg';
import type { SagaEvent, SagaMode, SagaSnapshot, SagaStatus, StepState, StepStatus } from '../../engine/saga';

/** A row of sagas, with its steps (and events) aggregated as JSON tuples: one round trip per read. */
export interface SagaRow extends QueryResultRow {
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
  /** NULL: the saga holds no lease (parked). */
  lease_left_ms: number | null;
  /** claim() only: the lease had lapsed, and whose it was. */
  lapsed?: boolean;
  former_owner?: string | null;
  steps: StepTuple[] | null;
  history?: EventTuple[] | null;
}

/** Timestamps inside json are ISO 8601 strings with an offset; output is jsonb as text. */
type StepTuple = [name: string, status: StepStatus, attempts: number, compensationAttempts: number, output: string | null, error: string | null, startedAt: string | null, endedAt: string | null, runner: string | null, wakeAt: string | null];
type EventTuple = [seq: number, at: string, type: string, step: string | null, detail: string | null, podId: string | null];

export const SAGA_COLUMNS = `
  s.request_id, s.facade, s.version, s.mode, s.status, s.revision, s.owner, s.deadline, s.wake_at,
  s.input::text AS input, s.output::text AS output, s.error, s.error_code, s.trace_parent, s.created_at, s.updated_at,
  (extract(epoch from s.lease_expires_at - now()) * 1000)::float8 AS lease_left_ms`;
export const STEPS_OF_S = `
  (SELECT json_agg(json_build_array(t.name, t.status, t.attempts, t.compensation_attempts, t.output::text, t.error, t.started_at, t.ended_at, t.runner, t.wake_at)
                   ORDER BY t.position)
     FROM saga_steps t WHERE t.request_id = s.request_id) AS steps`;
export const HISTORY_OF_S = `
  (SELECT json_agg(json_build_array(e.seq, e.at, e.type, e.step, e.detail, e.pod_id) ORDER BY e.seq)
     FROM saga_events e WHERE e.request_id = s.request_id) AS history`;

/** The engine writes millisecond ISO strings (toISOString()); Postgres keeps microseconds, so they come back equal. */
export function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** Columns that are NULL become absent keys (undefined), never null: snapshots stay plain JSON. */
export function toSnapshot(row: SagaRow, leaseTtlMs: number): SagaSnapshot {
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
  // No lease (a parked saga, owned by nobody): no age either.
  if (row.lease_left_ms !== null) saga.leaseAgeMs = Math.max(0, Math.round(leaseTtlMs - row.lease_left_ms));
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
