import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, NotFoundError } from './errors';
import type { Logger } from './logger';
import type { PurgeCursor, SagaStore } from './store';

export interface RetentionOptions {
  /** How long a finished saga (COMPLETED, COMPENSATED) is kept; 0: forever. A facade may set its own. */
  retentionMs: number;
  /** Between two passes over the store. */
  intervalMs: number;
  /** Sagas deleted per batch (one short transaction each). */
  batch: number;
  /** The least pause between two batches. */
  pauseMs: number;
}

/**
 * A batch is followed by a pause this many times as long as the batch took: the purge holds a
 * connection and Postgres' attention at most a quarter of the time, and the live path (which it
 * never blocks: it skips locked rows) keeps the rest.
 */
const PAUSE_FACTOR = 3;

/**
 * Deletes finished sagas past their retention, a batch at a time, oldest first per facade. Every
 * instance runs it; on Postgres the store lets one instance at a time purge (an advisory lock per
 * batch), and an instance that finds the lock taken leaves the pass to the holder.
 */
export class Retention {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly store: SagaStore,
    /** A facade's own retention (FacadeDefinition.retentionMs), else undefined: the default applies. */
    private readonly retentionOf: (facade: string) => number | undefined,
    private readonly options: RetentionOptions,
    private readonly log: Logger,
  ) {}

  /** The first pass comes after one interval (start-up has other work); nothing when the store cannot purge. */
  start(): void {
    if (!this.store.purgeFinished || !this.store.finishedFacades) return;
    this.schedule(this.options.intervalMs);
  }

  /** Stops scheduling and waits for a batch in progress: no purge statement runs once this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * One pass: every facade with finished sagas, batch by batch until none is past its retention.
   * Returns what it deleted; `busy` when another instance holds the retention lock (it purges).
   */
  async pass(now = Date.now()): Promise<{ deleted: number; busy: boolean }> {
    const { store } = this;
    if (!store.purgeFinished || !store.finishedFacades) return { deleted: 0, busy: false };
    let deleted = 0;
    for (const facade of await store.finishedFacades()) {
      const keep = this.retentionOf(facade) ?? this.options.retentionMs;
      if (keep <= 0) continue;
      const before = new Date(now - keep);
      let after: PurgeCursor | undefined;
      for (;;) {
        if (this.stopped) return { deleted, busy: false };
        const started = Date.now();
        const result = await store.purgeFinished({ facade, before, limit: this.options.batch, after });
        if (!result) return { deleted, busy: true };
        deleted += result.deleted;
        after = result.last;
        if (result.taken < this.options.batch) break;
        await sleep(Math.max(this.options.pauseMs, PAUSE_FACTOR * (Date.now() - started)));
      }
    }
    return { deleted, busy: false };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.running = this.pass()
        .then(({ deleted, busy }) => {
          if (deleted > 0) this.log.info('retention: finished sagas deleted', { deleted, ms: Date.now() - started, retentionMs: this.options.retentionMs });
          if (busy) this.log.debug('retention: another instance is purging');
        })
        .catch((err) => this.log.warn('retention pass failed; trying again next interval', { error: ensureError(err).message }))
        .finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}

/** 604800000 → "7d", 5400000 → "1h30m": how the retention is named to a user. */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]];
  let left = ms;
  let text = '';
  for (const [unit, size] of units) {
    const n = Math.floor(left / size);
    if (n > 0) text += `${n}${unit}`;
    left -= n * size;
  }
  return text || '0ms';
}

/** NOT_FOUND for a saga id the store does not have: it may have finished and been deleted. */
export function sagaNotFound(requestId: string, retentionMs: number): NotFoundError {
  if (retentionMs <= 0) return new NotFoundError(`saga ${requestId}`);
  return new NotFoundError(`saga ${requestId}`, `finished sagas are deleted after saga.retentionMs (${formatDuration(retentionMs)}, unless its facade sets its own)`);
}
