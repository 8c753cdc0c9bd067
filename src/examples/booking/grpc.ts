import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../engine/logger';
import type { Orchestrator } from '../../engine/orchestrator';
import { unary } from '../../grpc/unary';
import { ASYNC_BOOKING, SYNC_BOOKING, THROTTLED_BOOKING, type BookingResult } from './facades';

/** pb.BookingService, wire-compatible with the reference facade orchestrator. */
export function bookingServiceImpl(orchestrator: Orchestrator, log: Logger): grpc.UntypedServiceImplementation {
  return {
    HandleSyncBooking: unary(log, 'HandleSyncBooking', async (request: unknown, ctx) => {
      const result = (await orchestrator.runSync(SYNC_BOOKING, ctx.requestId, request, ctx)) as BookingResult;
      return { RequestID: ctx.requestId, OrderID: result.orderId, PaymentID: result.paymentId };
    }),
    HandleThrottlingBooking: unary(log, 'HandleThrottlingBooking', async (request: unknown, ctx) => {
      const result = (await orchestrator.runThrottled(THROTTLED_BOOKING, ctx.requestId, request, ctx)) as BookingResult;
      return { RequestID: ctx.requestId, OrderID: result.orderId, PaymentID: result.paymentId };
    }),
    HandleAsyncBooking: unary(log, 'HandleAsyncBooking', async (request: unknown, ctx) => {
      await orchestrator.startAsync(ASYNC_BOOKING, ctx.requestId, request);
      return { RequestID: ctx.requestId };
    }),
  };
}
