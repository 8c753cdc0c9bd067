import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { CallLog, withCallLog } from '../../demo/call-log';
import { DEMO_SHUTDOWN_GRACE_MS, runDemoService } from '../../demo/run-service';
import { Warehouse, warehouseServiceImpl } from './warehouse-service';

/**
 * Runs the demo upstream of the order delivery example: `node
 * dist/src/examples/delivery/services/main.js warehouse <host:port>`. Reservations are in memory,
 * as is the count of every call received (ListCalls).
 */
runDemoService('main.js', {
  async warehouse(address, log) {
    const server = await startGrpcServer({
      address, log, protos: loadProtos(['warehouse.proto']),
      services: [{ name: 'warehouse.v1.WarehouseService', implementation: withCallLog(warehouseServiceImpl(new Warehouse(), log), new CallLog()) }],
    });
    return { stop: () => server.shutdown(DEMO_SHUTDOWN_GRACE_MS) };
  },
});
