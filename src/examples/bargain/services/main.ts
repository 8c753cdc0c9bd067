import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { CallLog, withCallLog } from '../../demo/call-log';
import { DEMO_SHUTDOWN_GRACE_MS, runDemoService } from '../../demo/run-service';
import { Drivers, driversServiceImpl } from './drivers-service';

/**
 * Runs the demo upstream of the ride-hailing bargain example: `node
 * dist/src/examples/bargain/services/main.js drivers <host:port>`. Rides are in memory, as is the
 * count of every call received (ListCalls).
 */
runDemoService('main.js', {
  async drivers(address, log) {
    const server = await startGrpcServer({
      address, log, protos: loadProtos(['drivers.proto']),
      services: [{ name: 'drivers.v1.DriverService', implementation: withCallLog(driversServiceImpl(new Drivers(), log), new CallLog()) }],
    });
    return { stop: () => server.shutdown(DEMO_SHUTDOWN_GRACE_MS) };
  },
});
