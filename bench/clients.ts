import * as grpc from '@grpc/grpc-js';
import { clientOf, loadProtos } from '../src/grpc/protos';

const protos = loadProtos(['booking.proto', 'orchestrator.proto']);

/** The outcome of one unary call: never rejects, so load loops need no try/catch. */
export type CallResult<T> = { ok: true; response: T } | { ok: false; code: string; message: string };

export function codeName(err: unknown): string {
  const code = (err as Partial<grpc.ServiceError>).code;
  return typeof code === 'number' ? (grpc.status[code] ?? `CODE_${code}`) : 'CLIENT_ERROR';
}

export function unaryCall<T>(client: grpc.Client, method: string, request: object, requestId: string | undefined, deadlineMs: number): Promise<CallResult<T>> {
  const md = new grpc.Metadata();
  if (requestId) md.set('x-request-id', requestId);
  const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method];
  return new Promise((resolve) => {
    fn.call(client, request, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, response: T) => {
      resolve(err ? { ok: false, code: codeName(err), message: err.details ?? err.message } : { ok: true, response });
    });
  });
}

/**
 * `count` pb.BookingService clients, each on its own channel and HTTP/2 connection (a local
 * subchannel pool per channel; without it grpc-js would share one subchannel among them).
 */
export function bookingClients(address: string, count: number): grpc.Client[] {
  const Booking = clientOf(protos, 'pb.BookingService');
  return Array.from({ length: count }, (_, i) => new Booking(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.primary_user_agent': `saga-bench/${i}`,
    // As a lean production client would be: no channelz statistics, no transparent-retry buffering.
    'grpc.enable_channelz': 0,
    'grpc.enable_retries': 0,
  }));
}

export function orchestratorClient(address: string, options: grpc.ChannelOptions = {}): grpc.Client {
  return new (clientOf(protos, 'orchestrator.v1.OrchestratorService'))(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, ...options });
}

export interface SagaRow { request_id: string; status: string; created_at: string; updated_at: string }

export interface SagaFilter { facade: string; status?: string; createdFrom?: string }

/** Every saga ListSagas returns for the filter, following page tokens (pages of 1000). */
export async function listAllSagas(client: grpc.Client, filter: SagaFilter): Promise<SagaRow[]> {
  const all: SagaRow[] = [];
  let pageToken = '';
  do {
    const request = { facade: filter.facade, status: filter.status ?? 'SAGA_STATUS_UNSPECIFIED', created_from: filter.createdFrom ?? '', page_size: 1000, page_token: pageToken };
    const res = await unaryCall<{ sagas: SagaRow[]; next_page_token: string }>(client, 'ListSagas', request, undefined, 30_000);
    if (!res.ok) throw new Error(`ListSagas: ${res.code} ${res.message}`);
    all.push(...res.response.sagas);
    pageToken = res.response.next_page_token;
  } while (pageToken);
  return all;
}
