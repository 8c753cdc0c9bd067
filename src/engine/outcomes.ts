import type { SagaSnapshot } from './saga';

type WakeFn = (saga?: Readonly<SagaSnapshot>) => void;

/** A registered wait for one saga's next outcome. */
export interface Wake {
  promise: Promise<Readonly<SagaSnapshot> | undefined>;
  cancel: () => void;
}

/**
 * Wake-ups for callers waiting on a saga that may be driven elsewhere (notify comes from the
 * outcome broadcast, or with the saga itself when this instance ended it).
 */
export class Outcomes {
  private readonly waiters = new Map<string, Set<WakeFn>>();

  /** A promise resolved by the next notify(requestId), with the saga when the notifier had it; cancel() when no longer waiting. */
  next(requestId: string): Wake {
    let wake!: WakeFn;
    const promise = new Promise<Readonly<SagaSnapshot> | undefined>((resolve) => { wake = resolve; });
    const set = this.waiters.get(requestId) ?? new Set();
    set.add(wake);
    this.waiters.set(requestId, set);
    const cancel = () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(requestId) === set) this.waiters.delete(requestId);
    };
    return { promise, cancel };
  }

  waiting(requestId: string): boolean {
    return this.waiters.has(requestId);
  }

  notify(requestId: string, saga?: Readonly<SagaSnapshot>): void {
    const set = this.waiters.get(requestId);
    if (!set) return;
    this.waiters.delete(requestId);
    for (const wake of set) wake(saga);
  }
}
