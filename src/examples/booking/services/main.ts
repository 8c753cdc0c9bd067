import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { CallLog, withCallLog } from '../../demo/call-log';
import { DEMO_SHUTDOWN_GRACE_MS, runDemoService } from '../../demo/run-service';
import { OrderBook, orderServiceImpl } from './order-service';
import { PaymentLedger, paymentServiceImpl } from './payment-service';

/**
 * Runs one demo upstream of the booking example: `node dist/src/examples/booking/services/main.js
 * order|payment <host:port>`. State is in memory, as is the count of every call received
 * (ListCalls). With DEMO_STATE_FILE set, the order service keeps its orders and call counts across
 * restarts (written there on shutdown, read at start), as a real one would.
 */
runDemoService('main.js', {
  async order(address, log) {
    const stateFile = process.env.DEMO_STATE_FILE;
    const saved = stateFile && existsSync(stateFile)
      ? JSON.parse(readFileSync(stateFile, 'utf8')) as { book: ReturnType<OrderBook['toJSON']>; calls: ReturnType<CallLog['all']> }
      : undefined;
    const book = saved ? OrderBook.from(saved.book) : new OrderBook();
    const calls = saved ? CallLog.from(saved.calls) : new CallLog();
    const server = await startGrpcServer({ address, log, protos: loadProtos(['order.proto']), services: [{ name: 'order.v1.OrderService', implementation: withCallLog(orderServiceImpl(book, log), calls) }] });
    return {
      async stop() {
        await server.shutdown(DEMO_SHUTDOWN_GRACE_MS);
        if (stateFile) writeFileSync(stateFile, JSON.stringify({ book, calls: calls.all() }));
      },
    };
  },
  async payment(address, log) {
    const server = await startGrpcServer({ address, log, protos: loadProtos(['payment.proto']), services: [{ name: 'payment.v1.PaymentService', implementation: withCallLog(paymentServiceImpl(new PaymentLedger(), log), new CallLog()) }] });
    return { stop: () => server.shutdown(DEMO_SHUTDOWN_GRACE_MS) };
  },
});
