import type { SagaSnapshot } from './saga';

/** Default bound on the bytes of the copies kept (estimated, see sizeOf). */
export const RECENT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Copies of the sagas this instance just handed to the transport, so that the instance consuming
 * the message (usually this one) need not read the saga back from the store. A copy may be behind
 * the store (another instance moved the saga on): a write from it is refused by the store's
 * revision fence, and a decision to do nothing must be checked against the store first. A copy
 * older than `maxAgeMs` is not handed out: a message that comes back that late was redelivered
 * after another consumer died, maybe after it ran the step, which only the store can tell.
 * Bounded by count and by bytes: a saga may carry up to a payload limit per step output and a
 * long history, so 10,000 copies could otherwise hold gigabytes.
 */
export class RecentSagas {
  private readonly sagas = new Map<string, { snapshot: SagaSnapshot; at: number; bytes: number }>();
  private totalBytes = 0;

  constructor(private readonly capacity: number, private readonly maxAgeMs = Infinity, private readonly maxBytes = RECENT_MAX_BYTES) {}

  /** Estimated bytes of the copies kept now. */
  get bytes(): number {
    return this.totalBytes;
  }

  get size(): number {
    return this.sagas.size;
  }

  put(snapshot: SagaSnapshot): void {
    this.delete(snapshot.requestId);
    const bytes = sizeOf(snapshot);
    // Larger than the whole budget: not kept (the consumer reads the store), rather than emptying the cache for it.
    if (bytes > this.maxBytes) return;
    this.sagas.set(snapshot.requestId, { snapshot, at: Date.now(), bytes });
    this.totalBytes += bytes;
    // Oldest out first (a Map iterates in insertion order).
    while (this.sagas.size > this.capacity || this.totalBytes > this.maxBytes) this.delete(this.sagas.keys().next().value!);
  }

  /** Removes and returns the copy: whoever takes it either writes (fenced) or reads the store. */
  take(requestId: string): SagaSnapshot | undefined {
    const copy = this.sagas.get(requestId);
    this.delete(requestId);
    return copy && Date.now() - copy.at <= this.maxAgeMs ? copy.snapshot : undefined;
  }

  delete(requestId: string): void {
    const copy = this.sagas.get(requestId);
    if (!copy) return;
    this.sagas.delete(requestId);
    this.totalBytes -= copy.bytes;
  }
}

/**
 * About the bytes a value holds as JSON (strings as UTF-16 code units, the other scalars 8): a
 * walk that allocates nothing, several times cheaper than JSON.stringify, within a few percent
 * of its length for a saga's typical JSON. An estimate for a memory bound, not a wire size.
 */
export function sizeOf(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'object': {
      if (value === null) return 4;
      let n = 2;
      if (Array.isArray(value)) {
        for (const v of value) n += sizeOf(v) + 1;
        return n;
      }
      for (const key in value) n += key.length + 4 + sizeOf((value as Record<string, unknown>)[key]);
      return n;
    }
    case 'undefined':
      return 0;
    default:
      return 8;
  }
}
