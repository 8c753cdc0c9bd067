import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import type { CallLog } from '../../demo/call-log';
import { Refusal, respond, signalOf } from '../../demo/refusal';
import { FACTORY_MAX_DELAY_MS, type Hammer, type Handle, type Head } from '../clients';
import type { HeadMaker, HeadOrder } from './head-worker';

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback<T> = grpc.sendUnaryData<T>;

/** One piece of work the factory received, recorded when it ended (factory.v1.FactoryCall). */
export interface FactoryCall {
  method: 'MakeHead' | 'MakeHandle' | 'MakeHammer' | 'DestroyHead';
  request_id: string;
  idempotency_key: string;
  head_id: string;
  handle_id: string;
  hammer_id: string;
  started_at_ms: number;
  ended_at_ms: number;
  /** Empty when it succeeded. */
  error: string;
}

export interface HandleOrder { requestId: string; idempotencyKey: string; size: string; delayMs: number }
export interface HammerOrder { requestId: string; idempotencyKey: string; headId: string; handleId: string; delayMs: number; faultInject: boolean }

/**
 * The demo factory of hammer parts, in memory. Every make is idempotent per idempotency key, even
 * while a slow one is still at work; every piece of work is recorded with its start and end.
 */
export class Factory implements HeadMaker {
  private readonly next = { head: 1, handle: 1, hammer: 1 };
  private readonly heads = new Map<string, Head>();
  private readonly headByRequest = new Map<string, Head>();
  private readonly handles = new Map<string, Handle>();
  private readonly making = { head: new Map<string, Promise<Head>>(), handle: new Map<string, Promise<Handle>>(), hammer: new Map<string, Promise<Hammer>>() };
  /** Requests whose head was destroyed before it existed: a late MakeHead must not make it. */
  private readonly tombstones = new Set<string>();
  private readonly records: FactoryCall[] = [];

  makeHead(order: HeadOrder, signal: AbortSignal): Promise<Head> {
    return this.record({ method: 'MakeHead', request_id: order.requestId, idempotency_key: order.idempotencyKey }, (head) => ({ head_id: head.id }), () => {
      if (!order.type) throw new Refusal('INVALID_ARGUMENT', 'type: required');
      return this.once(this.making.head, order, signal, () => {
        if (this.tombstones.has(order.requestId)) throw new Refusal('FAILED_PRECONDITION', `the head of request ${order.requestId} was destroyed before it was made`);
        const head: Head = { id: `head-${this.next.head++}`, request_id: order.requestId, type: order.type, status: 'MADE' };
        this.heads.set(head.id, head);
        this.headByRequest.set(order.requestId, head);
        return head;
      });
    });
  }

  makeHandle(order: HandleOrder, signal: AbortSignal): Promise<Handle> {
    return this.record({ method: 'MakeHandle', request_id: order.requestId, idempotency_key: order.idempotencyKey }, (handle) => ({ handle_id: handle.id }), () => {
      if (!order.size) throw new Refusal('INVALID_ARGUMENT', 'size: required');
      return this.once(this.making.handle, order, signal, () => {
        const handle: Handle = { id: `handle-${this.next.handle++}`, request_id: order.requestId, size: order.size };
        this.handles.set(handle.id, handle);
        return handle;
      });
    });
  }

  /** Assembles a hammer from a head (not destroyed) and a handle made here. */
  makeHammer(order: HammerOrder, signal: AbortSignal): Promise<Hammer> {
    const call = { method: 'MakeHammer', request_id: order.requestId, idempotency_key: order.idempotencyKey, head_id: order.headId, handle_id: order.handleId } as const;
    return this.record(call, (hammer) => ({ hammer_id: hammer.id }), () => this.once(this.making.hammer, order, signal, () => {
      const head = this.heads.get(order.headId);
      if (head?.status !== 'MADE') throw new Refusal('FAILED_PRECONDITION', `head ${order.headId || '(none)'} ${head ? 'was destroyed' : 'not found'}`);
      if (!this.handles.has(order.handleId)) throw new Refusal('FAILED_PRECONDITION', `handle ${order.handleId || '(none)'} not found`);
      if (order.faultInject) throw new Refusal('FAILED_PRECONDITION', 'hammer assembly failed: fault injected (failAt: hammer)');
      return { id: `hammer-${this.next.hammer++}`, request_id: order.requestId, head_id: order.headId, handle_id: order.handleId };
    }));
  }

  /**
   * Destroys a head, by id or as the one made for a request; NOT_FOUND when there is none. By
   * request id, that request can then no longer make one (a command still on its way is refused).
   */
  destroyHead(by: { headId?: string; requestId?: string }, idempotencyKey = ''): Promise<Head> {
    const call = { method: 'DestroyHead', request_id: by.requestId ?? '', idempotency_key: idempotencyKey, head_id: by.headId ?? '' } as const;
    return this.record(call, (head) => ({ head_id: head.id, request_id: head.request_id }), async () => {
      const head = by.headId ? this.heads.get(by.headId) : this.headByRequest.get(by.requestId ?? '');
      if (!head) {
        if (!by.headId && by.requestId) this.tombstones.add(by.requestId);
        throw new Refusal('NOT_FOUND', `head ${by.headId ?? `for request ${by.requestId ?? '(none)'}`} not found`);
      }
      head.status = 'DESTROYED';
      return head;
    });
  }

  calls(): FactoryCall[] {
    return this.records.map((c) => ({ ...c }));
  }

  /** One piece of work per idempotency key; a failed or cut one may be tried again under the same key. */
  private once<T>(making: Map<string, Promise<T>>, order: { idempotencyKey: string; delayMs: number }, signal: AbortSignal, make: () => T): Promise<T> {
    if (!order.idempotencyKey) return Promise.reject(new Refusal('INVALID_ARGUMENT', 'idempotency_key: required'));
    if (!(order.delayMs >= 0 && order.delayMs <= FACTORY_MAX_DELAY_MS)) return Promise.reject(new Refusal('INVALID_ARGUMENT', `delay_ms: must be between 0 and ${FACTORY_MAX_DELAY_MS}`));
    const existing = making.get(order.idempotencyKey);
    if (existing) return existing;
    const work = (async () => {
      if (order.delayMs > 0) await sleep(order.delayMs, undefined, { signal });
      return make();
    })();
    making.set(order.idempotencyKey, work);
    work.catch(() => making.delete(order.idempotencyKey));
    return work;
  }

  private async record<T>(call: Partial<FactoryCall> & Pick<FactoryCall, 'method' | 'request_id' | 'idempotency_key'>, idsOf: (result: T) => Partial<FactoryCall>, work: () => Promise<T>): Promise<T> {
    const entry: FactoryCall = { head_id: '', handle_id: '', hammer_id: '', started_at_ms: Date.now(), ended_at_ms: 0, error: '', ...call };
    try {
      const result = await work();
      this.records.push({ ...entry, ...idsOf(result), ended_at_ms: Date.now() });
      return result;
    } catch (err) {
      this.records.push({ ...entry, ended_at_ms: Date.now(), error: err instanceof Refusal ? `${err.code}: ${err.message}` : String(err) });
      throw err;
    }
  }
}

/** The head worker's HeadMaker in the factory's own process: the command counted in ListCalls as MakeHead. */
export function localHeadMaker(factory: Factory, calls: CallLog): HeadMaker {
  return {
    makeHead(order, signal) {
      calls.record('MakeHead', order.idempotencyKey);
      return factory.makeHead(order, signal);
    },
  };
}

const int = (value: string | number | undefined): number => Number(value ?? 0);

export function factoryServiceImpl(factory: Factory, log: Logger): grpc.UntypedServiceImplementation {
  return {
    MakeHead(call: Call<{ request_id: string; idempotency_key: string; type: string; delay_ms: string }>, cb: Callback<Head>) {
      const req = call.request;
      respond(cb, async () => {
        const head = await factory.makeHead({ requestId: req.request_id, idempotencyKey: req.idempotency_key, type: req.type, delayMs: int(req.delay_ms) }, signalOf(call));
        log.info('head made', { requestId: req.request_id, headId: head.id });
        return head;
      });
    },
    MakeHandle(call: Call<{ request_id: string; idempotency_key: string; size: string; delay_ms: string }>, cb: Callback<Handle>) {
      const req = call.request;
      respond(cb, async () => {
        const handle = await factory.makeHandle({ requestId: req.request_id, idempotencyKey: req.idempotency_key, size: req.size, delayMs: int(req.delay_ms) }, signalOf(call));
        log.info('handle made', { requestId: req.request_id, handleId: handle.id });
        return handle;
      });
    },
    MakeHammer(call: Call<{ request_id: string; idempotency_key: string; head_id: string; handle_id: string; delay_ms: string; fault_inject: boolean }>, cb: Callback<Hammer>) {
      const req = call.request;
      respond(cb, async () => {
        const hammer = await factory.makeHammer({
          requestId: req.request_id, idempotencyKey: req.idempotency_key, headId: req.head_id, handleId: req.handle_id, delayMs: int(req.delay_ms), faultInject: req.fault_inject,
        }, signalOf(call)).catch((err: unknown) => {
          log.info('hammer refused', { requestId: req.request_id, error: String(err) });
          throw err;
        });
        log.info('hammer made', { requestId: req.request_id, hammerId: hammer.id });
        return hammer;
      });
    },
    DestroyHead(call: Call<{ head_id: string; request_id: string }>, cb: Callback<Head>) {
      const { head_id, request_id } = call.request;
      const key = call.metadata.get('x-idempotency-key')[0];
      respond(cb, async () => {
        const head = await factory.destroyHead({ headId: head_id || undefined, requestId: request_id || undefined }, key === undefined ? '' : String(key));
        log.info('head destroyed', { requestId: head.request_id, headId: head.id });
        return head;
      });
    },
    ListFactoryCalls(_call: Call<object>, cb: Callback<{ calls: FactoryCall[] }>) {
      cb(null, { calls: factory.calls() });
    },
  };
}
