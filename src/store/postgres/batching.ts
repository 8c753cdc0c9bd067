import { ensureError, StoreUnavailableError } from '../../engine/errors';
import type { FlushResult } from '../../lib/batcher';

/**
 * A batch whose statement fails for a reason other than the connection is retried saga by saga,
 * so that one saga the database refuses fails alone.
 */
export async function isolated<T, R>(items: T[], flush: (items: T[]) => Promise<FlushResult<R>>): Promise<FlushResult<R>> {
  try {
    return await flush(items);
  } catch (err) {
    if (items.length === 1 || err instanceof StoreUnavailableError) throw err;
    return Promise.all(items.map((item) => flush([item]).then((r) => r[0], (e: unknown) => ensureError(e))));
  }
}

/** A create or save waiting for its batch, already serialised. */
export interface Write {
  requestId: string;
  revision: number;
  json: string;
}

/** In request id order: every statement that locks several saga rows locks them in that one order. */
export function jsonArray(writes: Write[]): string {
  const sorted = writes.length > 1 ? [...writes].sort((a, b) => (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0)) : writes;
  return `[${sorted.map((w) => w.json).join(',')}]`;
}
