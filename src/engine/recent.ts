import type { SagaSnapshot } from './saga';

/**
 * Copies of the sagas this instance just handed to the transport, so that the instance consuming
 * the message (usually this one) need not read the saga back from the store. A copy may be behind
 * the store (another instance moved the saga on): a write from it is refused by the store's
 * revision fence, and a decision to do nothing must be checked against the store first. A copy
 * older than `maxAgeMs` is not handed out: a message that comes back that late was redelivered
 * after another consumer died, maybe after it ran the step, which only the store can tell.
 */
export class RecentSagas {
  private readonly sagas = new Map<string, { snapshot: SagaSnapshot; at: number }>();

  constructor(private readonly capacity: number, private readonly maxAgeMs = Infinity) {}

  put(snapshot: SagaSnapshot): void {
    this.sagas.delete(snapshot.requestId);
    this.sagas.set(snapshot.requestId, { snapshot, at: Date.now() });
    // Oldest out first (a Map iterates in insertion order).
    if (this.sagas.size > this.capacity) this.sagas.delete(this.sagas.keys().next().value!);
  }

  /** Removes and returns the copy: whoever takes it either writes (fenced) or reads the store. */
  take(requestId: string): SagaSnapshot | undefined {
    const copy = this.sagas.get(requestId);
    this.sagas.delete(requestId);
    return copy && Date.now() - copy.at <= this.maxAgeMs ? copy.snapshot : undefined;
  }

  delete(requestId: string): void {
    this.sagas.delete(requestId);
  }
}
