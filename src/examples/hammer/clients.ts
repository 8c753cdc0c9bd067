import * as grpc from '@grpc/grpc-js';
import { callUpstream, UPSTREAM_CHANNEL } from '../../grpc/call';
import { clientOf, loadProtos } from '../../grpc/protos';
import type { HeadMaker } from './services/head-worker';

/** factory.v1 messages as the loaded protos give them (field names as in the .proto, int64 as strings). */
export interface Head { id: string; request_id: string; type: string; status: 'MADE' | 'DESTROYED' }
export interface Handle { id: string; request_id: string; size: string }
export interface Hammer { id: string; request_id: string; head_id: string; handle_id: string }

/** The longest the factory takes to make a part (a request's delay_ms). */
export const FACTORY_MAX_DELAY_MS = 60_000;

export interface HammerClients {
  factory: grpc.Client;
  close(): void;
}

/** The gRPC client of the demo factory (factory.v1.FactoryService). */
export function createHammerClients(addresses: { factory: string }): HammerClients {
  const protos = loadProtos(['factory.proto']);
  const factory = new (clientOf(protos, 'factory.v1.FactoryService'))(addresses.factory, grpc.credentials.createInsecure(), UPSTREAM_CHANNEL);
  return { factory, close: () => factory.close() };
}

/**
 * Heads made by the demo factory over gRPC (MakeHead): what a HeadWorker running inside the
 * orchestrator process (embedded mode, in-process transport) uses, so that every head is in the
 * factory that DestroyHead and MakeHammer ask. A factory that cannot be reached fails with a
 * retryable error: the worker keeps the command and tries again.
 */
export function remoteHeadMaker(clients: HammerClients): HeadMaker {
  return {
    makeHead: (order, signal) => callUpstream<object, Head>(clients.factory, 'MakeHead', {
      request_id: order.requestId, idempotency_key: order.idempotencyKey, type: order.type, delay_ms: order.delayMs,
    }, { requestId: order.requestId, idempotencyKey: order.idempotencyKey, signal }),
  };
}
