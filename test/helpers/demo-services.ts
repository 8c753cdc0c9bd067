import * as grpc from '@grpc/grpc-js';
import type { StepContext } from '../../src/engine/facade';
import { silentLogger } from '../../src/engine/logger';
import { Drivers, driversServiceImpl } from '../../src/examples/bargain/services/drivers-service';
import { CallLog, withCallLog } from '../../src/examples/demo/call-log';
import { Warehouse, warehouseServiceImpl } from '../../src/examples/delivery/services/warehouse-service';
import { Factory, factoryServiceImpl } from '../../src/examples/hammer/services/factory-service';
import { AccountsLedger, accountsServiceImpl } from '../../src/examples/transfer/services/accounts-service';
import { PaymentGateway, gatewayServiceImpl } from '../../src/examples/transfer/services/gateway-service';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { startGrpcServer } from '../../src/grpc/server';

/** A demo service served in this process on a free port, with its state and call counts at hand. */
export interface InProcessService<S> {
  address: string;
  state: S;
  calls: CallLog;
  client: grpc.Client;
  stop(): Promise<void>;
}

async function serve<S>(state: S, proto: string, service: string, implementation: grpc.UntypedServiceImplementation, address = '127.0.0.1:0'): Promise<InProcessService<S>> {
  const protos = loadProtos([proto]);
  const calls = new CallLog();
  const server = await startGrpcServer({ address, log: silentLogger, protos, services: [{ name: service, implementation: withCallLog(implementation, calls) }] });
  const bound = `127.0.0.1:${server.port}`;
  const client = new (clientOf(protos, service))(bound, grpc.credentials.createInsecure());
  return { address: bound, state, calls, client, stop: async () => { client.close(); await server.shutdown(1_000); } };
}

export function serveFactory(factory = new Factory(), address?: string): Promise<InProcessService<Factory>> {
  return serve(factory, 'factory.proto', 'factory.v1.FactoryService', factoryServiceImpl(factory, silentLogger), address);
}

export function serveAccounts(ledger = new AccountsLedger()): Promise<InProcessService<AccountsLedger>> {
  return serve(ledger, 'accounts.proto', 'accounts.v1.AccountsService', accountsServiceImpl(ledger, silentLogger));
}

export function serveGateway(gateway = new PaymentGateway()): Promise<InProcessService<PaymentGateway>> {
  return serve(gateway, 'gateway.proto', 'gateway.v1.PaymentGatewayService', gatewayServiceImpl(gateway, silentLogger));
}

export function serveWarehouse(warehouse = new Warehouse()): Promise<InProcessService<Warehouse>> {
  return serve(warehouse, 'warehouse.proto', 'warehouse.v1.WarehouseService', warehouseServiceImpl(warehouse, silentLogger));
}

export function serveDrivers(drivers = new Drivers()): Promise<InProcessService<Drivers>> {
  return serve(drivers, 'drivers.proto', 'drivers.v1.DriverService', driversServiceImpl(drivers, silentLogger));
}

/** A node's context as the engine would give it on the first visit and attempt (plus `output`, for compensations). */
export function nodeContext<I>(requestId: string, step: string, input: I, results: Record<string, unknown> = {}, output?: unknown): StepContext<I> & { output: never } {
  return {
    requestId, facade: 'test', step, visit: 1, attempt: 1, idempotencyKey: `${requestId}:${step}`, input, results,
    signal: new AbortController().signal, log: silentLogger, output: output as never,
  };
}
