import { Counter, Histogram, type Registry } from 'prom-client';
import type { EngineMetrics } from '../engine/metrics';
import { nodeOf, type SagaEvent, type SagaSnapshot } from '../engine/saga';

/** Seconds, from a few ms (a sync step) to a day (a saga parked on a long wait). */
const SAGA_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1_800, 3_600, 86_400];
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3_600];
const LATENESS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** How an attempt's history event names its outcome (a label value). */
const ATTEMPT_OUTCOMES: Readonly<Record<string, string>> = {
  STEP_SUCCEEDED: 'succeeded',
  STEP_FAILED: 'failed',
  STEP_ATTEMPT_FAILED: 'retried',
};

const ENDED = new Set(['SAGA_COMPLETED', 'SAGA_COMPENSATED', 'SAGA_COMPENSATION_FAILED']);

/**
 * The engine's series, read off the history events each write stored. Labels are facade, version,
 * node, status, outcome and error code: sets bounded by the registered facades, never a request id.
 */
export class SagaSeries implements EngineMetrics {
  private readonly started: Counter<'facade' | 'version'>;
  private readonly ended: Counter<'facade' | 'version' | 'status'>;
  private readonly aborts: Counter<'facade' | 'node' | 'code'>;
  private readonly duration: Histogram<'facade' | 'status'>;
  private readonly attempt: Histogram<'facade' | 'node' | 'outcome'>;
  private readonly retries: Counter<'facade' | 'node'>;
  private readonly compensations: Counter<'facade' | 'node'>;
  private readonly compensationFailures: Counter<'facade' | 'node'>;
  private readonly rejections: Counter<'facade'>;
  private readonly lateness: Histogram;

  constructor(registers: Registry[]) {
    this.started = new Counter({ name: 'och_sagas_started_total', help: 'Sagas created (a repeated request id creates none).', labelNames: ['facade', 'version'], registers });
    this.ended = new Counter({ name: 'och_sagas_ended_total', help: 'Sagas that reached COMPLETED, COMPENSATED or COMPENSATION_FAILED.', labelNames: ['facade', 'version', 'status'], registers });
    this.aborts = new Counter({ name: 'och_saga_aborts_total', help: 'Sagas handed to their compensation, by the node that failed and the error code.', labelNames: ['facade', 'node', 'code'], registers });
    this.duration = new Histogram({ name: 'och_saga_duration_seconds', help: 'From a saga\'s creation to its end, by the status it ended with.', labelNames: ['facade', 'status'], buckets: SAGA_BUCKETS, registers });
    this.attempt = new Histogram({
      name: 'och_step_attempt_duration_seconds', help: 'One attempt of a node visit (a wait: until its event), by outcome: succeeded, failed, retried.',
      labelNames: ['facade', 'node', 'outcome'], buckets: STEP_BUCKETS, registers,
    });
    this.retries = new Counter({ name: 'och_step_retries_total', help: 'Step attempts that failed and got another attempt.', labelNames: ['facade', 'node'], registers });
    this.compensations = new Counter({ name: 'och_compensations_total', help: 'Node visits compensated (undone).', labelNames: ['facade', 'node'], registers });
    this.compensationFailures = new Counter({ name: 'och_compensation_failures_total', help: 'Compensation attempts that failed.', labelNames: ['facade', 'node'], registers });
    this.rejections = new Counter({ name: 'och_throttle_rejections_total', help: 'Throttled calls refused with RESOURCE_EXHAUSTED (queue full).', labelNames: ['facade'], registers });
    this.lateness = new Histogram({ name: 'och_timer_lateness_seconds', help: 'How long after it was due a visit timer (wait timeout, sleep, retry) fired.', buckets: LATENESS_BUCKETS, registers });
  }

  recorded(saga: Readonly<SagaSnapshot>, from: number): void {
    const { history, facade } = saga;
    for (let i = from; i < history.length; i++) {
      const e = history[i];
      const outcome = ATTEMPT_OUTCOMES[e.type];
      if (outcome !== undefined) {
        const node = nodeOf(e.step!);
        const start = attemptStart(history, i, e.step!);
        if (start !== undefined) this.attempt.observe({ facade, node, outcome }, (Date.parse(e.at) - start) / 1_000);
        if (outcome === 'retried') this.retries.inc({ facade, node });
      } else if (e.type === 'SAGA_STARTED') {
        this.started.inc({ facade, version: saga.version });
      } else if (ENDED.has(e.type)) {
        const status = e.type.slice('SAGA_'.length);
        this.ended.inc({ facade, version: saga.version, status });
        this.duration.observe({ facade, status }, (Date.parse(e.at) - Date.parse(saga.createdAt)) / 1_000);
      } else if (e.type === 'SAGA_COMPENSATING' && e.step !== undefined) {
        // A retried compensation (COMPENSATION_FAILED -> COMPENSATING) names no node: not an abort.
        // A saga is aborted once: the code set with this event is still the saga's.
        this.aborts.inc({ facade, node: nodeOf(e.step), code: saga.errorCode ?? 'UNKNOWN' });
      } else if (e.type === 'COMPENSATION_SUCCEEDED') {
        this.compensations.inc({ facade, node: nodeOf(e.step!) });
      } else if (e.type === 'COMPENSATION_FAILED') {
        this.compensationFailures.inc({ facade, node: nodeOf(e.step!) });
      }
    }
  }

  throttleRejected(facade: string): void {
    this.rejections.inc({ facade });
  }

  timersFired(lateMs: readonly number[]): void {
    for (const ms of lateMs) this.lateness.observe(Math.max(0, ms) / 1_000);
  }
}

/**
 * When the attempt that event i ends began: its STEP_STARTED (an external step is started, then
 * parked for its reply), else its STEP_WAITING (a wait or sleep is parked without starting).
 */
function attemptStart(history: readonly SagaEvent[], i: number, step: string): number | undefined {
  let waiting: string | undefined;
  for (let j = i - 1; j >= 0; j--) {
    const e = history[j];
    if (e.step !== step) continue;
    if (e.type === 'STEP_STARTED') return Date.parse(e.at);
    if (e.type === 'STEP_WAITING') waiting = e.at;
    else if (ATTEMPT_OUTCOMES[e.type] !== undefined || e.type === 'STEP_SKIPPED') break;
  }
  return waiting === undefined ? undefined : Date.parse(waiting);
}
