import * as grpc from '@grpc/grpc-js';
import { UPSTREAM_CHANNEL } from '../../grpc/call';
import { clientOf, loadProtos } from '../../grpc/protos';

/** warehouse.v1.Reservation as the loaded protos give it. */
export interface Reservation { id: string; request_id: string; items: string[]; status: 'RESERVED' | 'RELEASED'; calls: string[] }

export interface DeliveryClients {
  warehouse: grpc.Client;
  close(): void;
}

/** The gRPC client of the demo warehouse. */
export function createDeliveryClients(addresses: { warehouse: string }): DeliveryClients {
  const protos = loadProtos(['warehouse.proto']);
  const warehouse = new (clientOf(protos, 'warehouse.v1.WarehouseService'))(addresses.warehouse, grpc.credentials.createInsecure(), UPSTREAM_CHANNEL);
  return { warehouse, close: () => warehouse.close() };
}
