import { OrchestratorError } from './errors';

/**
 * At most `limit` holders at once; up to `queue` more wait in line; beyond that, acquire() fails
 * at once with RESOURCE_EXHAUSTED. A waiter whose signal aborts leaves the line.
 */
export class Throttle {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(readonly limit: number, readonly queue: number) {}

  get running(): number { return this.active; }
  get queued(): number { return this.waiting.length; }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    if (this.waiting.length >= this.queue) {
      throw new OrchestratorError('RESOURCE_EXHAUSTED', `throttled: ${this.active} sagas running and ${this.waiting.length} waiting`, true);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason ?? new OrchestratorError('CANCELLED', 'gave up waiting for a throttle slot'));
      }, { once: true });
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.resolve();
      else this.active--;
    };
  }
}
