import * as grpc from '@grpc/grpc-js';
import { UPSTREAM_CHANNEL } from '../../grpc/call';
import { clientOf, loadProtos } from '../../grpc/protos';

export interface BargainClients {
  drivers: grpc.Client;
  close(): void;
}

/** The gRPC client of the demo drivers service. */
export function createBargainClients(addresses: { drivers: string }): BargainClients {
  const protos = loadProtos(['drivers.proto']);
  const drivers = new (clientOf(protos, 'drivers.v1.DriverService'))(addresses.drivers, grpc.credentials.createInsecure(), UPSTREAM_CHANNEL);
  return { drivers, close: () => drivers.close() };
}
