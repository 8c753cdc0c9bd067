import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../engine/logger';
import type { FacadeRegistry } from '../engine/registry';
import type { SagaStore, StoreGauges } from '../engine/store';

/** A due timer not fired after this long is overdue (timers are looked for every saga.timerPollMs, 50 ms). */
export const OVERDUE_MS = 1_000;

/**
 * The store is read at most this often; scrapes in between get the last values. On Postgres the saga
 * counts, the parked visits (every unfinished saga's steps: seconds at 1,000,000 parked sagas) and
 * due timers are recounted in the background by the store itself.
 */
export const STORE_READ_EVERY_MS = 10_000;

/** Why a parked visit waits, from its node's kind (retrying: any step, until its next attempt). */
export type ParkedReason = 'waiting' | 'sleeping' | 'external' | 'retrying' | 'unknown';

export interface GaugeSources {
  store(): SagaStore | undefined;
  registry: FacadeRegistry;
  throttle(): { running: number; queued: number } | undefined;
  log: Logger;
}

/**
 * Gauges computed at scrape time. The saga counts come from the store in one statement (at most
 * every STORE_READ_EVERY_MS): it holds every instance's sagas, so every instance reports the same
 * cluster-wide values (aggregate them with max, not sum). The throttle's are this instance's.
 */
export function registerGauges(registers: Registry[], src: GaugeSources): void {
  // One store read serves the four store gauges of a scrape: the first collect() reads it, the others share it.
  let reading: Promise<StoreGauges | undefined> | undefined;
  let last: { at: number; gauges: StoreGauges } | undefined;
  const read = (): Promise<StoreGauges | undefined> => {
    if (last && Date.now() - last.at < STORE_READ_EVERY_MS) return Promise.resolve(last.gauges);
    reading ??= (async () => {
      try {
        const gauges = await src.store()?.gauges(OVERDUE_MS);
        if (gauges) last = { at: Date.now(), gauges };
        return gauges;
      } catch (err) {
        src.log.warn('metrics: the store gauges could not be read', { error: err instanceof Error ? err.message : String(err) });
        return undefined;
      } finally {
        setImmediate(() => { reading = undefined; });
      }
    })();
    return reading;
  };
  new Gauge({
    name: 'och_sagas_in_flight', help: 'Unfinished sagas in the store (all instances): RUNNING, COMPENSATING, COMPENSATION_FAILED.',
    labelNames: ['facade', 'version', 'status'], registers,
    async collect() {
      const g = await read();
      this.reset();
      for (const c of g?.sagas ?? []) this.set({ facade: c.facade, version: c.version, status: c.status }, c.sagas);
    },
  });
  new Gauge({
    name: 'och_sagas_parked', help: 'RUNNING sagas with a visit parked (all instances), by why: waiting (wait, race), sleeping, external (a reply), retrying.',
    labelNames: ['facade', 'reason'], registers,
    async collect() {
      const g = await read();
      this.reset();
      const sums = new Map<string, { facade: string; reason: ParkedReason; n: number }>();
      for (const p of g?.parked ?? []) {
        const reason = p.status === 'RETRYING' ? 'retrying' : reasonOf(src.registry, p.facade, p.version, p.node);
        const key = `${p.facade}\0${reason}`;
        const sum = sums.get(key) ?? { facade: p.facade, reason, n: 0 };
        sum.n += p.sagas;
        sums.set(key, sum);
      }
      for (const s of sums.values()) this.set({ facade: s.facade, reason: s.reason }, s.n);
    },
  });
  new Gauge({
    name: 'och_timers_due', help: 'RUNNING or COMPENSATING sagas whose durable timer is due now (all instances).', registers,
    async collect() {
      const g = await read();
      this.set(g?.timersDue ?? 0);
    },
  });
  new Gauge({
    name: 'och_timers_overdue', help: `Sagas whose timer has been due for over ${OVERDUE_MS / 1_000} s without firing (all instances).`, registers,
    async collect() {
      const g = await read();
      this.set(g?.timersOverdue ?? 0);
    },
  });
  new Gauge({
    name: 'och_throttle_running', help: 'Throttled calls holding a slot on this instance (throttle.maxConcurrent).', registers,
    collect() { this.set(src.throttle()?.running ?? 0); },
  });
  new Gauge({
    name: 'och_throttle_queue_depth', help: 'Throttled calls waiting for a slot on this instance (at most throttle.maxQueue).', registers,
    collect() { this.set(src.throttle()?.queued ?? 0); },
  });
}

function reasonOf(registry: FacadeRegistry, facade: string, version: number, node: string): ParkedReason {
  const def = registry.find(facade, version);
  const kind = def && registry.graph(def).byName.get(node)?.kind;
  if (kind === 'wait') return 'waiting';
  if (kind === 'sleep') return 'sleeping';
  if (kind === 'external') return 'external';
  return 'unknown';
}
