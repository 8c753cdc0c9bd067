import { ConcurrencyError, ensureError, SagaAbortedError, errorCode, MessageTooLargeError, PoisonMessageError } from './errors';
import type { ExternalStepDefinition, FacadeDefinition } from './facade';
import type { Graph } from './graph';
import type { Logger } from './logger';
import { encodeCommand, encodeMessage, type SagaMessage } from './messages';
import type { EngineOptions } from './options';
import { NO_METRICS, type EngineMetrics } from './metrics';
import { Outcomes } from './outcomes';
import { RecentSagas } from './recent';
import { sagaNotFound } from './retention';
import type { FacadeRegistry } from './registry';
import { nodeOf, Saga, visitOf } from './saga';
import { Scheduler, type Advance, type Started } from './scheduler';
import type { SagaStore } from './store';
import { SpanStatusCode } from '@opentelemetry/api';
import { ATTR, contextOf, traceIdOf, tracer } from './tracing';
import type { Message, Transport } from './transport';

/**
 * What every part of the engine shares: the store, the transport, who this process is, and the
 * plumbing every saga change goes through: fenced saves, publishes that fall back to a timer,
 * the end of a saga (completed, or handed to its rollback), and sagas given up after a failure.
 */
export class SagaRuntime {
  /** The lease holder: this run of the pod (`<podId>/<start id>`). Leases belong to it, not to the pod id. */
  readonly owner: string;
  readonly outcomes = new Outcomes();
  readonly recent: RecentSagas;
  /** Sync and throttled sagas whose caller this instance holds: concurrent duplicates share one run. */
  readonly calls = new Map<string, Promise<unknown>>();
  /**
   * Sagas this process gave up on (a store or broker failure left them half-handled): their leases
   * are no longer renewed, so that recovery (here or elsewhere) takes them over. By request id, when.
   */
  readonly released = new Map<string, number>();
  /**
   * Step attempts this process ran whose outcome it could not store (the store failed after the
   * step acted): when their message is handled again, a new attempt is recorded, not the same one
   * run twice under one number. By `requestId:step:attempt`, when.
   */
  readonly unrecorded = new Map<string, number>();
  /** In-process runs not held by a caller (after an event, a timer, StartSaga), by request id: how many. */
  readonly driving = new Map<string, number>();
  private readonly background = new Set<Promise<unknown>>();
  /** Writes to one saga from this process, one after the other (see update()). */
  private readonly writing = new Map<string, Promise<unknown>>();
  private readonly schedulers = new Map<string, Scheduler>();

  constructor(
    readonly registry: FacadeRegistry,
    readonly store: SagaStore,
    readonly transport: Transport,
    readonly log: Logger,
    readonly podId: string,
    incarnation: string,
    readonly outcomeTopic: string,
    /** Where external steps' workers answer (declared in topics/). */
    readonly replyTopic: string,
    readonly options: EngineOptions,
    readonly metrics: EngineMetrics = NO_METRICS,
  ) {
    this.owner = `${podId}/${incarnation}`;
    this.recent = new RecentSagas(10_000, this.silenceMs());
  }

  /** The facade's graph and its scheduler (both built once, at registration). */
  graph(def: FacadeDefinition): Graph {
    return this.registry.graph(def);
  }

  scheduler(def: FacadeDefinition): Scheduler {
    const key = `${def.name}@${def.version}`;
    let s = this.schedulers.get(key);
    if (!s) this.schedulers.set(key, (s = new Scheduler(this.graph(def), this.options.maxVisits)));
    return s;
  }

  /**
   * A fenced change to a saga that others may be changing at the same time (a parallel step on
   * another instance, an event, a timer): `change` works out the change on the saga as it is and
   * returns what to do after the write, or undefined when there is nothing to write. On a
   * ConcurrencyError the store's newer saga replaces `saga` and `change` runs again on it. Writes
   * from this process to one saga go one after the other.
   */
  async update<T>(saga: Saga, change: (saga: Saga) => T | undefined): Promise<T | undefined> {
    const id = saga.requestId;
    const before = this.writing.get(id) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(async () => {
      for (let tries = 1; ; tries++) {
        const result = change(saga);
        if (result === undefined) return undefined;
        try {
          await this.save(saga);
          return result;
        } catch (err) {
          if (!(err instanceof ConcurrencyError) || tries >= 20) throw err;
          const fresh = await this.store.get(id);
          if (!fresh) throw err;
          saga.replaceWith(fresh);
        }
      }
    });
    this.writing.set(id, run);
    try {
      return await run;
    } finally {
      if (this.writing.get(id) === run) this.writing.delete(id);
    }
  }

  /** Runs an in-process drive nobody awaits; shutdown waits for them, recovery leaves their sagas alone. */
  inBackground(requestId: string, run: () => Promise<unknown>): void {
    this.driving.set(requestId, (this.driving.get(requestId) ?? 0) + 1);
    const p = run()
      .catch((err: unknown) => {
        if (!(err instanceof SagaAbortedError)) this.release(requestId, err);
      })
      .finally(() => {
        const n = (this.driving.get(requestId) ?? 1) - 1;
        if (n > 0) this.driving.set(requestId, n);
        else this.driving.delete(requestId);
        this.background.delete(p);
      });
    this.background.add(p);
  }

  /** Work in hand: callers' runs and background drives. */
  inHand(): Promise<unknown>[] {
    return [...this.calls.values(), ...this.background];
  }

  /** Inside a change: records how the saga moved (completed, aborted, or its timer re-armed and, parked, its lease let go). */
  conclude(saga: Saga, def: FacadeDefinition, move: Advance): Advance {
    if (move.kind === 'complete') saga.complete(def.result(saga.results()));
    else if (move.kind === 'fail') {
      saga.startCompensating(move.node, move.error.message, errorCode(move.error));
      saga.wakeAt(undefined);
    } else {
      saga.rearm();
      if (saga.idle) saga.disown();
    }
    return move;
  }

  /**
   * After the write that recorded a move: sends what it started (async and throttled steps to their
   * topics; external steps' commands to theirs), or ends the saga. In-process step visits are left
   * to the caller, which runs them.
   */
  async effects(saga: Saga, def: FacadeDefinition, move: Advance): Promise<void> {
    if (move.kind === 'continue') {
      await this.send(saga, def, move.started, def.mode !== 'sync');
    } else if (move.kind === 'complete') {
      await this.announce(saga);
      this.sagaLog(saga).info('saga completed');
    } else {
      await this.publishRollbackOrRetryLater(saga, def);
      await this.announce(saga);
      this.sagaLog(saga, move.node).warn('saga aborted: rollback published', { error: move.error.message });
    }
  }

  /** Publishes started visits: commands always, steps when `steps` (they run from their topics). */
  async send(saga: Saga, def: FacadeDefinition, started: Started, steps: boolean): Promise<void> {
    for (const key of started.commands) await this.publishCommandOrRetryLater(saga, def, key);
    if (steps) for (const key of started.steps) await this.publishVisitOrRetryLater(saga, def, key);
  }

  /**
   * Marks the saga COMPENSATING and hands it to the facade's rollback consumer. If the rollback
   * cannot be published, a timer makes the recovery loop publish it later.
   */
  async abort(saga: Saga, def: FacadeDefinition, failedNode: string, error: Error): Promise<SagaAbortedError> {
    saga.startCompensating(failedNode, error.message, errorCode(error));
    saga.wakeAt(undefined);
    await this.save(saga);
    await this.publishRollbackOrRetryLater(saga, def);
    await this.announce(saga);
    this.sagaLog(saga, failedNode).warn('saga aborted: rollback published', { error: error.message });
    return new SagaAbortedError(saga.requestId, failedNode, errorCode(error), error.message);
  }

  /** Publishes a step visit's attempt on record to the step's topic. */
  async publishVisitOrRetryLater(saga: Saga, def: FacadeDefinition, key: string): Promise<void> {
    const node = this.graph(def).node(nodeOf(key)) as { topic?: string };
    await this.publishOrRetryLater(saga, encodeMessage(node.topic!, {
      kind: 'step', requestId: saga.requestId, facade: def.name, version: def.version, node: nodeOf(key), visit: visitOf(key),
      attempt: saga.step(key).attempts,
    }), (err) => this.failRefused(saga, def, key, err));
  }

  /** An external step's command, to the topic its worker consumes. Workers dedupe by idempotency key: it may come twice. */
  async publishCommandOrRetryLater(saga: Saga, def: FacadeDefinition, key: string): Promise<void> {
    const node = this.graph(def).node(nodeOf(key)) as ExternalStepDefinition;
    const visit = visitOf(key);
    const ctx = {
      requestId: saga.requestId, facade: def.name, step: node.name, visit, attempt: saga.step(key).attempts,
      idempotencyKey: `${saga.requestId}:${key}`, input: saga.input, results: saga.results(), deadline: saga.deadline,
    };
    const payload = node.command ? node.command(ctx) : { input: saga.input, results: ctx.results };
    await this.publishOrRetryLater(saga, encodeCommand(node.topic, { requestId: ctx.requestId, facade: ctx.facade, step: ctx.step, visit, attempt: ctx.attempt, idempotencyKey: ctx.idempotencyKey, replyTopic: this.replyTopic, payload }),
      (err) => this.failRefused(saga, def, key, err));
  }

  /**
   * A visit's message the broker refuses for its size (a command's payload: by default the input and
   * every output): no retry would send it, so the visit fails and the saga is compensated, rather
   * than the message being published again on every recovery tick.
   */
  private async failRefused(saga: Saga, def: FacadeDefinition, key: string, err: MessageTooLargeError): Promise<void> {
    this.sagaLog(saga, nodeOf(key)).error('message refused by the broker: the visit fails', { topic: err.topic, error: err.message });
    const move = await this.update(saga, (s) => {
      const status = s.find(key)?.status;
      if (s.status !== 'RUNNING' || (status !== 'RUNNING' && status !== 'WAITING')) return undefined;
      s.stepFailed(key, err.message);
      return this.conclude(s, def, { kind: 'fail', node: nodeOf(key), error: err });
    });
    if (move) await this.effects(saga, def, move);
  }

  async publishRollbackOrRetryLater(saga: Saga, def: FacadeDefinition): Promise<void> {
    const snapshot = saga.view();
    const failed = snapshot.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
    await this.publishOrRetryLater(saga, encodeMessage(def.rollbackTopic, {
      kind: 'rollback', requestId: saga.requestId, facade: def.name, version: def.version,
      failedNode: nodeOf(failed?.step ?? def.nodes[0].name), error: { code: 'SAGA_ABORTED', message: snapshot.error ?? '' },
      completed: saga.steps.filter((st) => st.output !== undefined).map((st) => ({ node: nodeOf(st.name) })),
    }));
  }

  /**
   * A message that cannot be published now is not lost: the saga gets a timer, and recovery
   * publishes it. One the broker refuses for good (too large) goes to `refused` when given; a
   * rollback (node names only, a few hundred bytes) has none.
   */
  async publishOrRetryLater(saga: Saga, message: Message, refused?: (err: MessageTooLargeError) => Promise<void>): Promise<void> {
    // Before publishing: the consumer may get the message before publish() returns.
    this.recent.put(saga.snapshot());
    try {
      await this.transport.publish(message);
    } catch (err) {
      this.recent.delete(saga.requestId);
      if (refused && err instanceof MessageTooLargeError) return refused(err);
      this.sagaLog(saga).warn('publish failed: recovery will publish it again', { topic: message.topic, error: ensureError(err).message });
      const retryAt = Date.now() + this.options.recoveryIntervalMs;
      const timer = saga.wakeAtMs;
      saga.wakeAt(new Date(timer !== undefined && timer < retryAt ? timer : retryAt));
      // Without the timer on record, only an expired lease gets the message published.
      await this.save(saga).catch((saveErr: unknown) => { throw this.release(saga.requestId, saveErr); });
    }
  }

  /**
   * Gives a saga up after a failure left it half-handled: its lease is no longer renewed, so that
   * recovery, here or on another instance, takes it over once the lease lapses. Returns the error.
   */
  release(requestId: string, err: unknown): Error {
    const error = ensureError(err);
    this.released.set(requestId, Date.now());
    this.log.warn('saga given up after a failure: recovery takes it over once its lease lapses', { requestId, error: error.message });
    return error;
  }

  /**
   * A lease older than this was not renewed by two heartbeats in a row: its owner is gone. Well under
   * Kafka's session timeout (10 s), after which a dead consumer's messages are delivered elsewhere.
   */
  silenceMs(): number {
    return 2 * this.options.heartbeatMs + 1_000;
  }

  /** The sagas released within the last two lease TTLs: by then their leases have lapsed and been claimed. */
  releasedIds(): string[] {
    const before = Date.now() - 2 * this.options.leaseTtlMs;
    for (const [id, at] of this.released) if (at < before) this.released.delete(id);
    // A message held through a long store outage is handled again within the hour, or by another instance.
    for (const [key, at] of this.unrecorded) if (at < Date.now() - 3_600_000) this.unrecorded.delete(key);
    return [...this.released.keys()];
  }

  /** Wakes the instance holding a throttled call, wherever the saga moved on. */
  async announce(saga: Saga): Promise<void> {
    if (saga.mode !== 'throttled') return;
    // The live state, not a copy: the saga has ended here, nothing changes it after this, and waiters only read it.
    if (this.outcomes.waiting(saga.requestId)) this.outcomes.notify(saga.requestId, saga.view());
    // The caller is held here, and was just woken: no other instance needs telling (a duplicate
    // call waiting elsewhere also polls the store).
    if (this.calls.has(saga.requestId)) return;
    const msg: SagaMessage = { kind: 'outcome', requestId: saga.requestId, facade: saga.facade, version: 1, status: saga.status };
    await this.transport.publish(encodeMessage(this.outcomeTopic, msg)).catch((err) =>
      this.sagaLog(saga).warn('outcome broadcast failed; the caller will poll', { error: ensureError(err).message }));
  }

  async load(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw sagaNotFound(requestId, this.options.retentionMs);
    return Saga.adopt(snapshot, this.podId);
  }

  /**
   * For messages: the copy this instance kept when it published, else the store's. A copy may be
   * behind the store; a write from it is fenced, but a decision to do nothing is not: unless the
   * copy passes `usable`, the store is asked.
   */
  async findRecent(requestId: string, usable: (saga: Saga) => boolean): Promise<Saga> {
    const recent = this.recent.take(requestId);
    if (recent) {
      const saga = Saga.adopt(recent, this.podId);
      if (usable(saga)) return saga;
    }
    return this.find(requestId);
  }

  /** Like load(), for messages: a message about a saga the store does not know can never be handled. */
  async find(requestId: string): Promise<Saga> {
    const snapshot = await this.store.get(requestId);
    if (!snapshot) throw new PoisonMessageError(`unknown saga ${requestId}`);
    return Saga.adopt(snapshot, this.podId);
  }

  async save(saga: Saga): Promise<void> {
    if (saga.idle && saga.owner !== undefined) saga.disown();
    const from = saga.changes().storedEvents;
    saga.saved(await this.store.save(saga.view(), saga.changes()));
    this.metrics.recorded(saga.view(), from);
    // Ours again (e.g. a redelivered message took it up): its lease is renewed again.
    if (this.released.size > 0) this.released.delete(saga.requestId);
    this.traceEndedWaits(saga);
  }

  /**
   * A wait may outlive the process that parked the saga: its span is recorded by whoever ends it,
   * once that is stored, with the times on record, under the saga's root.
   */
  private traceEndedWaits(saga: Saga): void {
    const ended = saga.takeEndedWaits();
    const parent = ended.length > 0 ? contextOf(saga.traceParent) : undefined;
    if (!parent) return;
    const def = this.registry.find(saga.facade, saga.version);
    for (const key of ended) {
      const visit = saga.find(key);
      if (!visit?.startedAt) continue;
      const node = nodeOf(key);
      const kind = (def && this.graph(def).byName.get(node)?.kind) ?? 'wait';
      const span = tracer().startSpan(`${kind} ${node}`, {
        startTime: new Date(visit.startedAt),
        attributes: {
          [ATTR.requestId]: saga.requestId, [ATTR.facade]: saga.facade, [ATTR.version]: saga.version, [ATTR.node]: node,
          [ATTR.visit]: visitOf(key), [ATTR.outcome]: visit.status.toLowerCase(),
        },
      }, parent);
      if (visit.status === 'FAILED') span.setStatus({ code: SpanStatusCode.ERROR, message: visit.error ?? 'failed' });
      span.end(visit.endedAt ? new Date(visit.endedAt) : undefined);
    }
  }

  sagaLog(saga: Pick<Saga, 'requestId' | 'facade'> & { traceParent?: string }, node?: string): Logger {
    const meta: Record<string, unknown> = { requestId: saga.requestId, facade: saga.facade };
    if (node) meta.node = node;
    if (saga.traceParent) meta.traceId = traceIdOf(saga.traceParent);
    return this.log.child(meta);
  }
}

/** The step visits running now: a cancel or a deadline names the first of them (else the latest visit). */
export function currentStep(saga: Saga): string {
  const active = saga.steps.find((s) => s.status === 'RUNNING' || s.status === 'RETRYING' || s.status === 'WAITING');
  return nodeOf(active?.name ?? saga.steps.filter((s) => s.attempts > 0).at(-1)?.name ?? saga.steps[0].name);
}

/** The pod id of an owner (`<podId>/<start id>`). */
export function podOf(owner: string | undefined): string | undefined {
  return owner?.slice(0, owner.lastIndexOf('/'));
}
