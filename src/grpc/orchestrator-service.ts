import type * as grpc from '@grpc/grpc-js';
import { NotFoundError, ValidationError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import type { Orchestrator } from '../engine/orchestrator';
import type { SagaSnapshot, StepStatus } from '../engine/saga';
import { unary } from './unary';

// Proto enum values share one namespace per package, so step statuses carry a prefix where they clash.
const STEP_STATUS: Readonly<Record<StepStatus, string>> = {
  PENDING: 'PENDING',
  RUNNING: 'STEP_RUNNING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'STEP_FAILED',
  COMPENSATING: 'STEP_COMPENSATING',
  COMPENSATED: 'STEP_COMPENSATED',
  COMPENSATION_FAILED: 'COMPENSATION_FAILED',
};

const json = (value: unknown): string => (value === undefined ? '' : JSON.stringify(value));

export function sagaToProto(saga: SagaSnapshot): Record<string, unknown> {
  return {
    request_id: saga.requestId,
    facade: saga.facade,
    version: saga.version,
    status: saga.status,
    input_json: json(saga.input),
    output_json: json(saga.output),
    error: saga.error ?? '',
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

/** orchestrator.v1.OrchestratorService: inspects sagas of every facade. */
export function orchestratorServiceImpl(orchestrator: Orchestrator, log: Logger): grpc.UntypedServiceImplementation {
  return {
    GetSaga: unary(log, 'GetSaga', async (request: { request_id?: string }) => {
      const id = request.request_id ?? '';
      if (!id) throw new ValidationError('request_id', 'required');
      const saga = await orchestrator.getSaga(id);
      if (!saga) throw new NotFoundError(`saga ${id}`);
      return sagaToProto(saga);
    }),
  };
}
