import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { CallLog, withCallLog } from '../../demo/call-log';
import { DEMO_SHUTDOWN_GRACE_MS, runDemoService } from '../../demo/run-service';
import { AccountsLedger, accountsServiceImpl } from './accounts-service';
import { PaymentGateway, gatewayServiceImpl, unavailableFirstFrom } from './gateway-service';

/**
 * Runs one demo upstream of the transfer example: `node dist/src/examples/transfer/services/main.js
 * accounts|gateway <host:port>`. State is in memory, as is the count of every call received
 * (ListCalls). DEMO_GATEWAY_UNAVAILABLE_FIRST=N makes the gateway answer UNAVAILABLE to the first N
 * calls of each idempotency key.
 */
runDemoService('main.js', {
  async accounts(address, log) {
    const server = await startGrpcServer({
      address, log, protos: loadProtos(['accounts.proto']),
      services: [{ name: 'accounts.v1.AccountsService', implementation: withCallLog(accountsServiceImpl(new AccountsLedger(), log), new CallLog()) }],
    });
    return { stop: () => server.shutdown(DEMO_SHUTDOWN_GRACE_MS) };
  },
  async gateway(address, log) {
    const unavailableFirst = unavailableFirstFrom(process.env);
    const server = await startGrpcServer({
      address, log, protos: loadProtos(['gateway.proto']),
      services: [{ name: 'gateway.v1.PaymentGatewayService', implementation: withCallLog(gatewayServiceImpl(new PaymentGateway(unavailableFirst), log), new CallLog()) }],
    });
    if (unavailableFirst > 0) log.info('gateway answers UNAVAILABLE to the first calls of each idempotency key', { unavailableFirst });
    return { stop: () => server.shutdown(DEMO_SHUTDOWN_GRACE_MS) };
  },
});
