import type * as grpc from '@grpc/grpc-js';
import { NotFoundError, ValidationError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import type { Orchestrator } from '../engine/orchestrator';
import type { SagaSnapshot, SagaStatus, StepStatus } from '../engine/saga';
import { unary } from './unary';

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

const SAGA_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];
/** In the proto for wire compatibility, never set: a filter on it matches no saga. */
const UNUSED_STATUSES: readonly string[] = ['FAILED'];
const MAX_PAGE = 1_000;

const json = (value: unknown): string => (value === undefined ? '' : JSON.stringify(value));

export function sagaToProto(saga: SagaSnapshot): Record<string, unknown> {
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
  };
}

interface ListRequest { facade: string; status: string; created_from: string; created_to: string; page_size: number; page_token: string }

function requireId(request: { request_id?: string }): string {
  if (!request.request_id) throw new ValidationError('request_id', 'required');
  return request.request_id;
}

function timestamp(value: string, field: string): string | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ValidationError(field, 'must be an RFC 3339 timestamp');
  return new Date(t).toISOString();
}

/** orchestrator.v1.OrchestratorService: inspects and steers sagas of every facade. */
export function orchestratorServiceImpl(orchestrator: Orchestrator, log: Logger): grpc.UntypedServiceImplementation {
  return {
    ListFacades: unary(log, 'ListFacades', async () => ({
      facades: orchestrator.listFacades().map((f) => ({ ...f, nodes: f.nodes.map((n) => ({ ...n, topic: n.topic ?? '' })) })),
    })),
    GetSaga: unary(log, 'GetSaga', async (request: { request_id?: string }) => {
      const id = requireId(request);
      const saga = await orchestrator.getSaga(id);
      if (!saga) throw new NotFoundError(`saga ${id}`);
      return sagaToProto(saga);
    }),
    ListSagas: unary(log, 'ListSagas', async (request: ListRequest) => {
      const unused = UNUSED_STATUSES.includes(request.status);
      const status = request.status === 'SAGA_STATUS_UNSPECIFIED' || !request.status || unused ? undefined : (request.status as SagaStatus);
      if (status && !SAGA_STATUSES.includes(status)) throw new ValidationError('status', `unknown status ${request.status}`);
      if (request.page_size < 0 || request.page_size > MAX_PAGE) throw new ValidationError('page_size', `must be between 0 and ${MAX_PAGE}`);
      const filter = {
        facade: request.facade || undefined,
        status,
        createdFrom: timestamp(request.created_from, 'created_from'),
        createdTo: timestamp(request.created_to, 'created_to'),
        pageSize: request.page_size || 50,
        pageToken: request.page_token || undefined,
      };
      if (unused) return { sagas: [], next_page_token: '' };
      const page = await orchestrator.listSagas(filter);
      return { sagas: page.sagas.map(sagaToProto), next_page_token: page.nextPageToken ?? '' };
    }),
    CancelSaga: unary(log, 'CancelSaga', async (request: { request_id?: string }) => sagaToProto(await orchestrator.cancelSaga(requireId(request)))),
    RetryCompensation: unary(log, 'RetryCompensation', async (request: { request_id?: string }) =>
      sagaToProto(await orchestrator.retryCompensation(requireId(request)))),
  };
}
