import type * as grpc from '@grpc/grpc-js';
import { ValidationError } from '../engine/errors';
import type { Logger } from '../engine/logger';
import type { Orchestrator } from '../engine/orchestrator';
import type { SagaSnapshot, SagaStatus } from '../engine/saga';
import { jsonField, jsonObjectField, required } from './fields';
import { sagaToProto } from './saga-proto';
import { unary } from './unary';

const SAGA_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];
/** In the proto for wire compatibility, never set: a filter on it matches no saga. */
const UNUSED_STATUSES: readonly string[] = ['FAILED'];
const MAX_PAGE = 1_000;

interface ListRequest { facade: string; status: string; created_from: string; created_to: string; page_size: number; page_token: string }
interface StartRequest { facade: string; input_json: string; version: number }
interface EventRequest { request_id: string; event: string; payload_json: string; idempotency_key: string }
interface CompleteRequest { request_id: string; step: string; output_json: string; visit: number }
interface FailRequest { request_id: string; step: string; error: string; visit: number }

/** 0 (the proto default): the step's latest visit. */
function visitOf(visit: number): number | undefined {
  if (visit < 0) throw new ValidationError('visit', 'must be 0 (the latest) or a visit number (1, 2, ...)');
  return visit === 0 ? undefined : visit;
}

function timestamp(value: string, field: string): string | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ValidationError(field, 'must be an RFC 3339 timestamp');
  return new Date(t).toISOString();
}

/**
 * orchestrator.v1.OrchestratorService: starts, drives, inspects and steers sagas of every facade.
 * Request fields are checked here (INVALID_ARGUMENT naming the field); what a request means for a
 * saga (NOT_FOUND, FAILED_PRECONDITION, ...) is the engine's to say.
 */
export function orchestratorServiceImpl(orchestrator: Orchestrator, log: Logger): grpc.UntypedServiceImplementation {
  const maxBytes = orchestrator.options.maxPayloadBytes;
  const withGraph = (saga: SagaSnapshot) => sagaToProto(saga, orchestrator.describeSaga(saga), orchestrator.leftAlone(saga));
  return {
    StartSaga: unary(log, 'StartSaga', async (request: StartRequest, ctx) => {
      const facade = required(request.facade, 'facade');
      const input = jsonField(request.input_json, 'input_json', {}, maxBytes);
      if (request.version < 0) throw new ValidationError('version', 'must be 0 (the newest) or a registered version');
      return { request_id: await orchestrator.startSaga(facade, ctx.requestId, input, request.version) };
    }),
    SendEvent: unary(log, 'SendEvent', async (request: EventRequest) => {
      const id = required(request.request_id, 'request_id');
      const event = required(request.event, 'event');
      const payload = jsonObjectField(request.payload_json, 'payload_json', maxBytes);
      await orchestrator.sendEvent(id, event, payload, request.idempotency_key || undefined);
      return {};
    }),
    CompleteStep: unary(log, 'CompleteStep', async (request: CompleteRequest) => {
      const id = required(request.request_id, 'request_id');
      const step = required(request.step, 'step');
      await orchestrator.completeStep(id, step, jsonField(request.output_json, 'output_json', null, maxBytes), visitOf(request.visit));
      return {};
    }),
    FailStep: unary(log, 'FailStep', async (request: FailRequest) => {
      const id = required(request.request_id, 'request_id');
      const step = required(request.step, 'step');
      await orchestrator.failStep(id, step, required(request.error, 'error'), visitOf(request.visit));
      return {};
    }),
    ListFacades: unary(log, 'ListFacades', async () => ({
      facades: (await orchestrator.listFacades()).map(({ runningSagas, ...f }) => ({
        ...f,
        running_sagas: runningSagas,
        nodes: f.nodes.map((n) => ({ ...n, topic: n.topic ?? '', branches: n.branches ?? [], events: n.events ?? [] })),
      })),
    })),
    GetSaga: unary(log, 'GetSaga', async (request: { request_id?: string }) => {
      const id = required(request.request_id, 'request_id');
      const saga = await orchestrator.getSaga(id);
      if (!saga) throw orchestrator.sagaNotFound(id);
      return withGraph(saga);
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
      return { sagas: page.sagas.map((s) => sagaToProto(s, undefined, orchestrator.leftAlone(s))), next_page_token: page.nextPageToken ?? '' };
    }),
    CancelSaga: unary(log, 'CancelSaga', async (request: { request_id?: string }) =>
      withGraph(await orchestrator.cancelSaga(required(request.request_id, 'request_id')))),
    RetryCompensation: unary(log, 'RetryCompensation', async (request: { request_id?: string }) =>
      withGraph(await orchestrator.retryCompensation(required(request.request_id, 'request_id')))),
  };
}
