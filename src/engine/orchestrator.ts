import { setTimeout as sleep } from 'node:timers/promises';
import { ensureError, errorCode, OrchestratorError, PoisonMessageError, SagaAbortedError } from './errors';
import type { FacadeDefinition, FacadeMode, StepDefinition } from './facade';
import type { Logger } from './logger';
import { decodeMessage, encodeMessage, type RollbackMessage, type SagaMessage, type StepMessage } from './messages';
import type { FacadeRegistry } from './registry';
import { Saga, type SagaSnapshot } from './saga';
import type { SagaStore } from './store';
import type { Message, Transport } from './transport';

export interface EngineOptions {
  /** Upper bound for one attempt of a step or a compensation. */
  stepTimeoutMs: number;
  compensation: { maxAttempts: number; backoffMs: number };
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  stepTimeoutMs: 30_000,
  compensation: { maxAttempts: 3, backoffMs: 200 },
};

export interface OrchestratorDeps {
  registry: FacadeRegistry;
  store: SagaStore;
  transport: Transport;
  logger: Logger;
  podId: string;
  options?: Partial<EngineOptions>;
}

type StepOutcome = { ok: true; output: unknown } | { ok: false; error: Error };

/**
 * Runs facades: sync ones in-process, async ones step by step over the transport, and the
 * rollback consumer that compensates failed sagas. Knows nothing of Kafka, gRPC or SQL.
 */
export class Orchestrator {
  private readonly registry: FacadeRegistry;
  private readonly store: SagaStore;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly podId: string;
  private readonly options: EngineOptions;
  private state: 'NEW' | 'RUNNING' | 'STOPPED' = 'NEW';

  constructor(deps: OrchestratorDeps) {
    this.registry = deps.registry;
    this.store = deps.store;
    this.transport = deps.transport;
    this.log = deps.logger;
    this.podId = deps.podId;
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...deps.options };
  }

  /** Subscribes to every async step topic and rollback topic of the registered facades. */
  async start(): Promise<void> {
    if (this.state !== 'NEW') throw new Error(`orchestrator cannot start from ${this.state}`);
    await this.transport.subscribe(this.registry.consumedTopics(), (m) => this.handle(m));
    this.state = 'RUNNING';
  }

  /** Refuses new sagas; messages already in hand are finished by the transport's close(). */
  stop(): void {
    this.state = 'STOPPED';
  }

  async getSaga(requestId: string): Promise<SagaSnapshot | undefined> {
    return this.store.get(requestId);
  }

  /** Runs a sync facade to the end; throws SagaAbortedError after handing the saga to its rollback consumer. */
  async runSync(facade: string, requestId: string, rawInput: unknown, signal?: AbortSignal): Promise<unknown> {
    const { def, input, saga } = await this.begin(facade, 'sync', requestId, rawInput);
    const results: Record<string, unknown> = {};
    for (const step of def.steps) {
      const outcome = await this.runStep(saga, def, step, input, results, signal);
      if (!outcome.ok) throw await this.abort(saga, def, step.name, outcome.error, results, input);
      results[step.name] = outcome.output;
    }
    const output = def.result(results);
    saga.complete(output);
    await this.save(saga);
    return output;
  }

  /** Starts an async facade: records the saga and publishes its first step. */
  async startAsync(facade: string, requestId: string, rawInput: unknown): Promise<string> {
    const { def, input, saga } = await this.begin(facade, 'async', requestId, rawInput);
    const first = def.steps[0];
    try {
      await this.publish(first.topic!, { kind: 'step', requestId, facade, version: def.version, node: first.name, attempt: 1, input, results: {} });
    } catch (err) {
      const error = ensureError(err);
      saga.fail(`could not publish the first step: ${error.message}`);
      await this.save(saga);
      throw new OrchestratorError('UNAVAILABLE', `saga ${requestId} not started: transport unavailable: ${error.message}`, true, { cause: error });
    }
    return requestId;
  }

  /** Entry point for every consumed message. Throws PoisonMessageError for messages that can never be handled. */
  async handle(message: Message): Promise<void> {
    const msg = decodeMessage(message);
    const def = this.registry.find(msg.facade);
    if (!def) throw new PoisonMessageError(`unknown facade ${msg.facade}`);
    if (msg.kind === 'step') {
      const step = def.steps.find((s) => s.name === msg.node);
      if (!step) throw new PoisonMessageError(`facade ${def.name} has no node ${msg.node}`);
      if (step.topic !== message.topic) throw new PoisonMessageError(`node ${msg.node} is not bound to topic ${message.topic}`);
      await this.handleStep(def, step, msg);
    } else {
      if (def.rollbackTopic !== message.topic) throw new PoisonMessageError(`facade ${def.name} does not roll back on topic ${message.topic}`);
      const unknown = [msg.failedNode, ...msg.completed.map((c) => c.node)].find((n) => !def.steps.some((s) => s.name === n));
      if (unknown) throw new PoisonMessageError(`facade ${def.name} has no node ${unknown}`);
      await this.rollback(def, msg);
    }
  }

  private async begin(facade: string, mode: FacadeMode, requestId: string, rawInput: unknown) {
    if (this.state !== 'RUNNING') throw new OrchestratorError('UNAVAILABLE', 'orchestrator is not running (starting or shutting down)', true);
    const def = this.registry.get(facade);
    if (def.mode !== mode) throw new OrchestratorError('FAILED_PRECONDITION', `facade ${facade} is ${def.mode}, not ${mode}`);
    const input = def.parseInput(rawInput);
    const saga = Saga.start({ requestId, facade, version: def.version, input, steps: def.steps.map((s) => s.name), podId: this.podId });
    await this.store.create(saga.snapshot());
    this.sagaLog(saga).info('saga started', { mode });
    return { def, input, saga };
  }

  private async handleStep(def: FacadeDefinition, step: StepDefinition, msg: StepMessage): Promise<void> {
    const saga = await this.load(def, msg);
    const log = this.sagaLog(saga, step.name);
    if (saga.status !== 'RUNNING' || saga.step(step.name).status === 'SUCCEEDED') {
      log.warn('step message for a saga or step already past it: skipped', { sagaStatus: saga.status, stepStatus: saga.step(step.name).status });
      return;
    }
    const outcome = await this.runStep(saga, def, step, msg.input, msg.results);
    if (!outcome.ok) {
      await this.abort(saga, def, step.name, outcome.error, msg.results, msg.input);
      return;
    }
    const results = { ...msg.results, [step.name]: outcome.output };
    const next = def.steps[def.steps.indexOf(step) + 1];
    if (next) {
      await this.publish(next.topic!, { ...msg, node: next.name, attempt: 1, results });
      return;
    }
    saga.complete(def.result(results));
    await this.save(saga);
    log.info('saga completed');
  }

  private async runStep(
    saga: Saga,
    def: FacadeDefinition,
    step: StepDefinition,
    input: unknown,
    results: Readonly<Record<string, unknown>>,
    callerSignal?: AbortSignal,
  ): Promise<StepOutcome> {
    const attempt = saga.stepStarted(step.name);
    // Write ahead: the step is on record as started before its side effect can happen.
    await this.save(saga);
    const log = this.sagaLog(saga, step.name);
    const timeout = AbortSignal.timeout(this.options.stepTimeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
    let outcome: StepOutcome;
    try {
      const output = await step.run({
        requestId: saga.requestId, facade: def.name, step: step.name, attempt,
        idempotencyKey: `${saga.requestId}:${step.name}`, input, results, signal, log,
      });
      saga.stepSucceeded(step.name, output ?? null);
      outcome = { ok: true, output: output ?? null };
      log.info('step succeeded', { attempt });
    } catch (err) {
      const error = ensureError(err);
      saga.stepFailed(step.name, error.message);
      outcome = { ok: false, error };
      log.warn('step failed', { attempt, error: error.message, code: errorCode(error) });
    }
    await this.save(saga);
    return outcome;
  }

  /** Marks the saga COMPENSATING and hands it to the facade's rollback consumer. */
  private async abort(
    saga: Saga,
    def: FacadeDefinition,
    failedNode: string,
    error: Error,
    results: Readonly<Record<string, unknown>>,
    input: unknown,
  ): Promise<SagaAbortedError> {
    saga.startCompensating(failedNode, error.message);
    await this.save(saga);
    const code = errorCode(error);
    const completed = def.steps.filter((s) => s.name in results).map((s) => ({ node: s.name, output: results[s.name] }));
    await this.publish(def.rollbackTopic, {
      kind: 'rollback', requestId: saga.requestId, facade: def.name, version: def.version,
      failedNode, error: { code, message: error.message }, completed, input,
    });
    this.sagaLog(saga, failedNode).warn('saga aborted: rollback published', { error: error.message, completed: completed.length });
    return new SagaAbortedError(saga.requestId, failedNode, code, error.message);
  }

  /** The rollback consumer: compensates completed steps in reverse order of completion. */
  private async rollback(def: FacadeDefinition, msg: RollbackMessage): Promise<void> {
    const saga = await this.load(def, msg);
    const log = this.sagaLog(saga);
    if (saga.isTerminal) {
      log.warn('rollback message for a finished saga: skipped', { sagaStatus: saga.status });
      return;
    }
    if (saga.status === 'RUNNING') saga.startCompensating(msg.failedNode, msg.error.message);
    for (const { node, output } of [...msg.completed].reverse()) {
      const step = def.steps.find((s) => s.name === node)!;
      const status = saga.step(node).status;
      if (!step.compensate || status === 'COMPENSATED') continue;
      const error = await this.compensateStep(saga, def, step, msg, output);
      if (error) {
        saga.fail(`compensation of ${node} failed after ${this.options.compensation.maxAttempts} attempts: ${error.message}`);
        await this.save(saga);
        log.error('saga FAILED: compensation exhausted its attempts', { node, error: error.message });
        return;
      }
    }
    saga.compensated();
    await this.save(saga);
    log.info('saga compensated');
  }

  /** Returns undefined on success, or the last error once attempts are exhausted. */
  private async compensateStep(saga: Saga, def: FacadeDefinition, step: StepDefinition, msg: RollbackMessage, output: unknown): Promise<Error | undefined> {
    const { maxAttempts, backoffMs } = this.options.compensation;
    const log = this.sagaLog(saga, step.name);
    for (let attempt = 1; ; attempt++) {
      saga.compensationStarted(step.name);
      await this.save(saga);
      try {
        await step.compensate!({
          requestId: saga.requestId, facade: def.name, step: step.name, attempt,
          idempotencyKey: `${saga.requestId}:${step.name}:compensate`, input: msg.input,
          results: Object.fromEntries(msg.completed.map((c) => [c.node, c.output])),
          signal: AbortSignal.timeout(this.options.stepTimeoutMs), log, output,
        });
        saga.compensationSucceeded(step.name);
        await this.save(saga);
        log.info('step compensated', { attempt });
        return undefined;
      } catch (err) {
        const error = ensureError(err);
        const final = attempt >= maxAttempts;
        saga.compensationAttemptFailed(step.name, error.message, final);
        await this.save(saga);
        log.warn('compensation attempt failed', { attempt, final, error: error.message });
        if (final) return error;
        await sleep(backoffMs * 2 ** (attempt - 1));
      }
    }
  }

  /**
   * The saga a message belongs to. When the store does not have it (another instance started it
   * and the stores are not shared), it is rebuilt from what the message carries.
   */
  private async load(def: FacadeDefinition, msg: SagaMessage): Promise<Saga> {
    const snapshot = await this.store.get(msg.requestId);
    if (snapshot) return Saga.fromSnapshot(snapshot, this.podId);
    const saga = Saga.start({ requestId: msg.requestId, facade: def.name, version: msg.version, input: msg.input, steps: def.steps.map((s) => s.name), podId: this.podId });
    const done = msg.kind === 'step' ? Object.entries(msg.results) : msg.completed.map((c) => [c.node, c.output] as const);
    for (const [node, output] of done) {
      saga.stepStarted(node);
      saga.stepSucceeded(node, output);
    }
    if (msg.kind === 'rollback') {
      saga.stepStarted(msg.failedNode);
      saga.stepFailed(msg.failedNode, msg.error.message);
    }
    await this.store.create(saga.snapshot());
    return saga;
  }

  private async publish(topic: string, msg: SagaMessage): Promise<void> {
    await this.transport.publish(encodeMessage(topic, msg));
  }

  private async save(saga: Saga): Promise<void> {
    await this.store.save(saga.snapshot());
  }

  private sagaLog(saga: Saga, node?: string): Logger {
    return this.log.child(node ? { requestId: saga.requestId, facade: saga.facade, node } : { requestId: saga.requestId, facade: saga.facade });
  }
}
