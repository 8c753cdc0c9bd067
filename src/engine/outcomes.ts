/** Wake-ups for callers waiting on a saga that may be driven elsewhere (notify comes from the outcome broadcast). */
export class Outcomes {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** A promise resolved by the next notify(requestId); cancel() when no longer waiting. */
  next(requestId: string): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => { wake = resolve; });
    const set = this.waiters.get(requestId) ?? new Set();
    set.add(wake);
    this.waiters.set(requestId, set);
    const cancel = () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(requestId) === set) this.waiters.delete(requestId);
    };
    return { promise, cancel };
  }

  notify(requestId: string): void {
    const set = this.waiters.get(requestId);
    if (!set) return;
    this.waiters.delete(requestId);
    for (const wake of set) wake();
  }
}
