import * as grpc from '@grpc/grpc-js';

export interface CallCount { method: string; idempotency_key: string; count: number }

/**
 * Every call a demo service received, counted per method and `x-idempotency-key` metadata (empty
 * when the call had none), whether or not it succeeded. Audits compare it with what the
 * orchestrator recorded: an upstream call that no attempt on record accounts for is a duplicate
 * the services' own idempotency would otherwise hide.
 */
export class CallLog {
  private readonly counts = new Map<string, CallCount>();

  record(method: string, idempotencyKey: string): void {
    const key = `${method}\u0000${idempotencyKey}`;
    const entry = this.counts.get(key);
    if (entry) entry.count++;
    else this.counts.set(key, { method, idempotency_key: idempotencyKey, count: 1 });
  }

  all(): CallCount[] {
    return [...this.counts.values()].map((c) => ({ ...c }));
  }

  static from(counts: CallCount[]): CallLog {
    const log = new CallLog();
    for (const c of counts) log.counts.set(`${c.method}\u0000${c.idempotency_key}`, { ...c });
    return log;
  }
}

/**
 * The service's implementation with every method counted in `log` as it is received, plus
 * `ListCalls`, which answers the counts (and is not counted itself).
 */
export function withCallLog(implementation: grpc.UntypedServiceImplementation, log: CallLog): grpc.UntypedServiceImplementation {
  const counted: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(implementation)) {
    counted[method] = ((call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const key = call.metadata.get('x-idempotency-key')[0];
      log.record(method, key === undefined ? '' : String(key));
      return (handler as grpc.handleUnaryCall<unknown, unknown>)(call, cb);
    }) as grpc.UntypedHandleCall;
  }
  counted.ListCalls = ((_call: grpc.ServerUnaryCall<object, unknown>, cb: grpc.sendUnaryData<{ calls: CallCount[] }>) => {
    cb(null, { calls: log.all() });
  }) as grpc.UntypedHandleCall;
  return counted;
}
