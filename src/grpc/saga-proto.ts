import type { SagaDescription } from '../engine/describe';
import type { SagaSnapshot, StepStatus } from '../engine/saga';

// Proto enum values share one namespace per package, so step statuses carry a prefix where they clash.
const STEP_STATUS: Readonly<Record<StepStatus, string>> = {
  PENDING: 'PENDING',
  RUNNING: 'STEP_RUNNING',
  RETRYING: 'STEP_RETRYING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'STEP_FAILED',
  COMPENSATING: 'STEP_COMPENSATING',
  COMPENSATED: 'STEP_COMPENSATED',
  COMPENSATION_FAILED: 'STEP_COMPENSATION_FAILED',
  WAITING: 'STEP_WAITING',
  SKIPPED: 'STEP_SKIPPED',
};

const json = (value: unknown): string => (value === undefined ? '' : JSON.stringify(value));

/**
 * orchestrator.v1.Saga. `graph`: the saga's nodes, waits and path (GetSaga); without it those
 * fields stay empty, as in ListSagas, where describing every saga of a page would cost too much.
 */
export function sagaToProto(saga: SagaSnapshot, graph?: SagaDescription, leftAlone?: string): Record<string, unknown> {
  return {
    request_id: saga.requestId,
    facade: saga.facade,
    version: saga.version,
    mode: saga.mode,
    status: saga.status,
    revision: saga.revision,
    owner: saga.owner ?? '',
    deadline: saga.deadline ?? '',
    input_json: json(saga.input),
    output_json: json(saga.output),
    error: saga.error ?? '',
    error_code: saga.errorCode ?? '',
    created_at: saga.createdAt,
    updated_at: saga.updatedAt,
    steps: saga.steps.map((s) => ({
      name: s.name,
      status: STEP_STATUS[s.status],
      attempts: s.attempts,
      compensation_attempts: s.compensationAttempts,
      output_json: json(s.output),
      error: s.error ?? '',
    })),
    history: saga.history.map((e) => ({ seq: e.seq, at: e.at, type: e.type, step: e.step ?? '', detail: e.detail ?? '', pod_id: e.podId ?? '' })),
    nodes: (graph?.nodes ?? []).map((n) => ({
      name: n.name,
      kind: n.kind,
      visits: n.visits.map((v) => ({
        visit: v.visit,
        status: STEP_STATUS[v.status],
        attempts: v.attempts,
        output_json: json(v.output),
        error: v.error ?? '',
        started_at: v.startedAt ?? '',
        ended_at: v.endedAt ?? '',
        wake_at: v.wakeAt ?? '',
      })),
    })),
    waiting: (graph?.waiting ?? []).map((w) => ({ node: w.node, events: w.events, until: w.until ?? '' })),
    mermaid: graph?.mermaid ?? '',
    left_alone: leftAlone ?? '',
  };
}
