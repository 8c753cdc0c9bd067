export interface BatcherOptions<T> {
  /** Most items one flush takes. */
  maxBatch: number;
  /** Most flushes running at once; further items queue and go in the next free flush. */
  maxInFlight: number;
  /** Items with the same key never share a flush (a later one waits for the next). */
  key?: (item: T) => string;
  /**
   * What an item weighs (e.g. its bytes) and the most one flush may carry: the items taken stop
   * before the one that would go over (an item heavier than that alone goes in a flush of its own).
   * A broker refuses a batch over its size limit as a whole, however small each message in it.
   */
  weight?: (item: T) => number;
  maxWeight?: number;
}

/** One result per item, in order: a value, or the Error that item alone failed with. */
export type FlushResult<R> = Array<R | Error>;

interface Pending<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (err: Error) => void;
}

/**
 * Group commit: concurrent calls share one round trip. An idle batcher flushes a call at once, on
 * its own, so a lone caller pays no latency for batching; under load, calls that arrive while
 * `maxInFlight` flushes are running queue up and leave together in the next one.
 */
export class Batcher<T, R> {
  private queue: Array<Pending<T, R>> = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly flush: (items: T[]) => Promise<FlushResult<R>>, private readonly options: BatcherOptions<T>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once everything submitted so far has been flushed. */
  drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      this.inFlight++;
      this.flush(batch.map((p) => p.item))
        .then(
          (results) => batch.forEach((p, i) => {
            const result = results[i];
            if (result instanceof Error) p.reject(result);
            else p.resolve(result);
          }),
          (err: Error) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.inFlight === 0 && this.queue.length === 0) this.idle.splice(0).forEach((resolve) => resolve());
        });
    }
  }

  /** Up to maxBatch items (and maxWeight) from the head of the queue, skipping (and keeping) repeats of a key already taken. */
  private take(): Array<Pending<T, R>> {
    const { maxBatch, key, weight, maxWeight = Infinity } = this.options;
    if (!key && !weight) return this.queue.splice(0, maxBatch);
    const taken: Array<Pending<T, R>> = [];
    const rest: Array<Pending<T, R>> = [];
    const keys = new Set<string>();
    let load = 0;
    let full = false;
    for (const p of this.queue) {
      const k = key?.(p.item);
      const w = weight?.(p.item) ?? 0;
      // Full once an item would go over: the ones after it wait too, so that items keep their order.
      full ||= taken.length >= maxBatch || (taken.length > 0 && load + w > maxWeight);
      if (!full && (k === undefined || !keys.has(k))) {
        if (k !== undefined) keys.add(k);
        load += w;
        taken.push(p);
      } else {
        rest.push(p);
      }
    }
    this.queue = rest;
    return taken;
  }
}
