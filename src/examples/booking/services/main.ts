import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createLogger } from '../../../log';
import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { CallLog, withCallLog } from './call-log';
import { OrderBook, orderServiceImpl } from './order-service';
import { PaymentLedger, paymentServiceImpl } from './payment-service';

/**
 * Runs one demo upstream: `node dist/src/examples/booking/services/main.js order|payment <host:port>`.
 * State is in memory, as is the count of every call received (ListCalls); the process exits 0 on
 * SIGTERM/SIGINT after in-flight calls. With DEMO_STATE_FILE set, the order service keeps its orders
 * and call counts across restarts (written there on shutdown, read at start), as a real one would.
 */
async function main(): Promise<void> {
  const [kind, address] = process.argv.slice(2);
  if ((kind !== 'order' && kind !== 'payment') || !address) {
    process.stderr.write('usage: main.js order|payment <host:port>\n');
    process.exit(2);
  }
  const log = createLogger({ level: process.env.OCH_LOG_LEVEL ?? 'info', podId: process.env.POD_ID ?? 'local', service: kind });
  const stateFile = kind === 'order' ? process.env.DEMO_STATE_FILE : undefined;
  const saved = stateFile && existsSync(stateFile)
    ? JSON.parse(readFileSync(stateFile, 'utf8')) as { book: ReturnType<OrderBook['toJSON']>; calls: ReturnType<CallLog['all']> }
    : undefined;
  const book = saved ? OrderBook.from(saved.book) : new OrderBook();
  const calls = saved ? CallLog.from(saved.calls) : new CallLog();
  const handle = kind === 'order'
    ? await startGrpcServer({ address, log, protos: loadProtos(['order.proto']), services: [{ name: 'order.v1.OrderService', implementation: withCallLog(orderServiceImpl(book, log), calls) }] })
    : await startGrpcServer({ address, log, protos: loadProtos(['payment.proto']), services: [{ name: 'payment.v1.PaymentService', implementation: withCallLog(paymentServiceImpl(new PaymentLedger(), log), calls) }] });
  const stop = () => handle.shutdown(5_000).then(() => {
    if (stateFile) writeFileSync(stateFile, JSON.stringify({ book, calls: calls.all() }));
    process.exit(0);
  });
  // fire-and-forget from a signal handler: stop() ends the process (a failure is an unhandled rejection: exit 1)
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
