import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import { Refusal, respond } from '../../demo/refusal';

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback<T> = grpc.sendUnaryData<T>;

/** A gateway.v1.Charge. */
export interface GatewayCharge { id: string; request_id: string; account: string; amount: number; status: 'PENDING' }

export interface ChargeOrder { requestId: string; idempotencyKey: string; account: string; amount: number }

/**
 * The demo payment gateway: charges in memory, idempotent per idempotency key, PENDING until the
 * webhook (sent by whoever plays the gateway: SendEvent). It answers UNAVAILABLE to the first
 * `unavailableFirst` calls of each idempotency key, as a flaky gateway would.
 */
export class PaymentGateway {
  private nextId = 1;
  private readonly charges: GatewayCharge[] = [];
  private readonly byKey = new Map<string, GatewayCharge>();
  private readonly calls = new Map<string, number>();

  constructor(private readonly unavailableFirst = 0) {}

  charge(order: ChargeOrder): GatewayCharge {
    if (!order.idempotencyKey) throw new Refusal('INVALID_ARGUMENT', 'idempotency_key: required');
    const call = (this.calls.get(order.idempotencyKey) ?? 0) + 1;
    this.calls.set(order.idempotencyKey, call);
    if (call <= this.unavailableFirst) throw new Refusal('UNAVAILABLE', `gateway unavailable (call ${call} of the first ${this.unavailableFirst} refused per idempotency key)`);
    if (!order.account) throw new Refusal('INVALID_ARGUMENT', 'account: required');
    if (!(Number.isSafeInteger(order.amount) && order.amount > 0)) throw new Refusal('INVALID_ARGUMENT', 'amount: must be a positive integer');
    const existing = this.byKey.get(order.idempotencyKey);
    if (existing) return existing;
    const charge: GatewayCharge = { id: `charge-${this.nextId++}`, request_id: order.requestId, account: order.account, amount: order.amount, status: 'PENDING' };
    this.charges.push(charge);
    this.byKey.set(order.idempotencyKey, charge);
    return charge;
  }

  all(): GatewayCharge[] {
    return this.charges.map((c) => ({ ...c }));
  }
}

/** DEMO_GATEWAY_UNAVAILABLE_FIRST: how many calls per idempotency key the gateway refuses first (default 0). */
export function unavailableFirstFrom(env: NodeJS.ProcessEnv): number {
  const raw = env.DEMO_GATEWAY_UNAVAILABLE_FIRST ?? '';
  const n = raw === '' ? 0 : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`DEMO_GATEWAY_UNAVAILABLE_FIRST: expected an integer >= 0, got ${JSON.stringify(raw)}`);
  return n;
}

export function gatewayServiceImpl(gateway: PaymentGateway, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Charge(call: Call<{ request_id: string; idempotency_key: string; account: string; amount: string }>, cb: Callback<GatewayCharge>) {
      const req = call.request;
      respond(cb, () => {
        try {
          const charge = gateway.charge({ requestId: req.request_id, idempotencyKey: req.idempotency_key, account: req.account, amount: Number(req.amount) });
          log.info('charge pending', { requestId: req.request_id, chargeId: charge.id });
          return charge;
        } catch (err) {
          log.info('charge refused', { requestId: req.request_id, error: String(err) });
          throw err;
        }
      });
    },
    ListCharges(_call: Call<object>, cb: Callback<{ charges: GatewayCharge[] }>) {
      cb(null, { charges: gateway.all() });
    },
  };
}
