/**
 * Thrown from a waitFor callback when the awaited condition can never hold any more (e.g. the saga
 * reached another terminal status): waitFor fails at once with it, instead of retrying until its
 * timeout and reporting only "timed out".
 */
export class Unreachable extends Error {
  override name = 'Unreachable';
}

/** Fails the waitFor it is called in at once (see Unreachable). */
export function unreachable(reason: string): never {
  throw new Unreachable(reason);
}

/**
 * Polls `fn` until it returns a value that is not undefined/false, or fails after `timeoutMs`.
 * Errors thrown by `fn` are retried (the last one is in the timeout's message), except Unreachable.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof Unreachable) throw new Error(`gave up waiting for ${what}: ${err.message}`, { cause: err });
      last = err as Error;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export type Rejection = Error & { code?: string; [key: string]: unknown };

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Rejection> {
  try {
    await promise;
  } catch (err) {
    return err as Rejection;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
