import { ensureError } from './errors';
import { compensationOf, type FacadeDefinition } from './facade';
import type { Graph } from './graph';
import { backoffMs } from './retry';
import type { Logger } from './logger';
import type { SagaRuntime } from './runtime';
import { nodeOf, visitOf, type Saga, type StepState } from './saga';
import { untilAborted } from './steps';
import { context } from '@opentelemetry/api';
import { ATTR, inSpan, recordError, sagaContext } from './tracing';

/** The rollback consumer: how a failed saga's steps are undone, and in which order. */
export class Compensator {
  /** Sagas whose compensation runs in this process now. */
  private readonly compensating = new Set<string>();

  constructor(private readonly rt: SagaRuntime) {}

  /**
   * The rollback consumer: compensates every visit that may have acted, in reverse dependency order
   * (independent ones at the same time, loop visits newest first), one attempt each at a time. A failed attempt is retried by a durable timer, not a sleep: the message is done, and
   * recovery publishes the rollback again when the timer is due. A message is held at most about one
   * attempt past stepTimeoutMs, so that the consumer stays in its group whatever the upstreams do.
   */
  async handleRollback(def: FacadeDefinition, requestId: string): Promise<void> {
    const saga = await this.rt.findRecent(requestId, (s) => s.status === 'COMPENSATING');
    const log = this.rt.sagaLog(saga);
    if (saga.status !== 'COMPENSATING') {
      log.debug('rollback message for a saga not compensating: skipped', { sagaStatus: saga.status });
      return;
    }
    const inFlight = saga.compensationInFlight();
    if (this.compensating.has(requestId) || (inFlight && saga.owner !== this.rt.owner)) {
      // Another consumer (here, or an instance holding the lease) is running an attempt: it goes on
      // from there, or, if it dies, recovery takes the saga over once its lease lapses.
      log.info('rollback message for a saga being compensated elsewhere: skipped', { node: inFlight, owner: saga.owner });
      return;
    }
    if (saga.wakeAtMs !== undefined && saga.wakeAtMs > Date.now()) {
      log.debug('rollback message ahead of the next compensation attempt: skipped', { wakeAt: saga.view().wakeAt });
      return;
    }
    this.compensating.add(requestId);
    try {
      await inSpan(`rollback ${def.name}`, sagaContext(saga.traceParent), {
        [ATTR.requestId]: requestId, [ATTR.facade]: def.name, [ATTR.version]: def.version,
      }, () => this.compensate(saga, def));
    } finally {
      this.compensating.delete(requestId);
    }
  }

  private async compensate(saga: Saga, def: FacadeDefinition): Promise<void> {
    saga.own(this.rt.owner);
    saga.wakeAt(undefined);
    const log = this.rt.sagaLog(saga);
    const began = Date.now();
    const graph = this.rt.graph(def);
    if (this.siblingsStillRunning(saga)) {
      // A visit running on another instance may still act: its outcome first, then the undo.
      saga.wakeAt(new Date(Date.now() + SIBLING_POLL_MS));
      await this.rt.save(saga);
      return;
    }
    for (;;) {
      const todo = saga.steps.filter((v) => v.attempts > 0 && graph.compensable(nodeOf(v.name)) && !['COMPENSATED', 'SKIPPED', 'PENDING'].includes(v.status));
      if (todo.length === 0) break;
      if (Date.now() - began >= this.rt.options.stepTimeoutMs) {
        // Held long enough: the rest goes on from a timer, through the rollback topic again.
        saga.wakeAt(new Date());
        await this.rt.save(saga);
        return;
      }
      // Reverse dependency order: a visit after everything that ran after it and depends on it; the others at once.
      const wave = todo.filter((v) => !todo.some((w) => w !== v && runsAfter(graph, w, v)));
      const outcomes = await Promise.all(wave.map((v) => this.compensateOnce(saga, def, v.name)));
      const failed = outcomes.findIndex((o) => o instanceof Error);
      if (failed >= 0) {
        const key = wave[failed].name;
        const error = outcomes[failed] as Error;
        saga.compensationFailed(`compensation of ${key} failed after ${saga.step(key).compensationAttempts} attempts: ${error.message}`);
        await this.rt.save(saga);
        await this.rt.announce(saga);
        log.error('saga COMPENSATION_FAILED: RetryCompensation resumes it', { node: key, error: error.message });
        return;
      }
      const retries = outcomes.filter((o): o is Date => o instanceof Date);
      if (retries.length > 0) {
        saga.wakeAt(new Date(Math.min(...retries.map((d) => d.getTime()))));
        await this.rt.save(saga);
        return;
      }
    }
    saga.compensated();
    await this.rt.save(saga);
    await this.rt.announce(saga);
    log.info('saga compensated');
  }

  /**
   * A step visit recorded as running, started recently enough that a consumer (here or on another
   * instance) may still be running it: undone before it acts, it would act after its undo. Past
   * one step timeout (and a missed heartbeat or two) it has ended or its instance is gone.
   */
  private siblingsStillRunning(saga: Saga): boolean {
    const horizon = this.rt.options.stepTimeoutMs + this.rt.silenceMs();
    return saga.steps.some((v) => v.status === 'RUNNING' && v.startedAt !== undefined && Date.now() - Date.parse(v.startedAt) < horizon);
  }

  /** One attempt, written ahead: 'compensated', when the next attempt is due, or the last error once attempts are exhausted. */
  private async compensateOnce(saga: Saga, def: FacadeDefinition, key: string): Promise<'compensated' | Date | Error> {
    const node = this.rt.graph(def).node(nodeOf(key));
    const log = this.rt.sagaLog(saga, node.name);
    const attempt = await this.rt.update(saga, (s) => s.compensationStarted(key));
    const attributes = {
      [ATTR.requestId]: saga.requestId, [ATTR.facade]: def.name, [ATTR.version]: def.version, [ATTR.node]: node.name,
      [ATTR.visit]: visitOf(key), [ATTR.attempt]: attempt!,
    };
    return inSpan(`compensate ${node.name}`, context.active(), attributes, async (span) => {
      const outcome = await this.compensateAttempt(saga, def, key, attempt!, log);
      if (outcome instanceof Error) recordError(span, outcome);
      else if (outcome instanceof Date) span.setAttribute(ATTR.outcome, 'failed_retryable');
      else span.setAttribute(ATTR.outcome, 'compensated');
      return outcome;
    });
  }

  private async compensateAttempt(saga: Saga, def: FacadeDefinition, key: string, attempt: number, log: Logger): Promise<'compensated' | Date | Error> {
    const policy = this.rt.options.compensation;
    const node = this.rt.graph(def).node(nodeOf(key));
    const compensate = compensationOf(node)!;
    const own = (node as { timeoutMs?: unknown }).timeoutMs;
    const signal = AbortSignal.timeout(typeof own === 'number' ? own : this.rt.options.stepTimeoutMs);
    try {
      await untilAborted(compensate({
        requestId: saga.requestId, facade: def.name, step: node.name, visit: visitOf(key), attempt: attempt,
        idempotencyKey: `${saga.requestId}:${key}:compensate`, input: saga.input, results: saga.results(),
        signal, log, output: saga.step(key).output,
      }), signal);
      await this.rt.update(saga, (s) => (s.compensationSucceeded(key), true));
      log.info('step compensated', { attempt, visit: visitOf(key) });
      return 'compensated';
    } catch (err) {
      const error = ensureError(err);
      const final = attempt >= policy.maxAttempts;
      await this.rt.update(saga, (s) => (s.compensationAttemptFailed(key, error.message, final), true));
      log.warn('compensation attempt failed', { attempt, final, error: error.message });
      if (final) return error;
      return new Date(Date.now() + backoffMs(policy, attempt));
    }
  }
}

/** Polls for the outcome of a step visit running on another instance before undoing anything. */
const SIBLING_POLL_MS = 200;

/** `w` must be undone before `v`: it lies after v's node in the graph and started after v. */
function runsAfter(graph: Graph, w: Readonly<StepState>, v: Readonly<StepState>): boolean {
  const wn = nodeOf(w.name);
  const vn = nodeOf(v.name);
  if (wn === vn) return visitOf(w.name) > visitOf(v.name);
  if (!graph.downstream(vn).has(wn)) return false;
  const ws = w.startedAt ?? '';
  const vs = v.startedAt ?? '';
  if (ws !== vs) return ws > vs;
  return !graph.downstream(wn).has(vn);
}
