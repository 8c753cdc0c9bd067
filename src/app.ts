import type { Logger } from './engine/logger';
import { Orchestrator } from './engine/orchestrator';
import { FacadeRegistry } from './engine/registry';
import type { Transport } from './engine/transport';
import type { AppConfig } from './config/schema';
import { EXAMPLES } from './examples';
import { orchestratorServiceImpl } from './grpc/orchestrator-service';
import { loadProtos } from './grpc/protos';
import { startGrpcServer, type GrpcServerHandle } from './grpc/server';
import { httpFailureOf } from './console/errors';
import { consoleRoutes } from './console/routes';
import { healthRoutes } from './http/health';
import { hostPolicy } from './http/hosts';
import { metricsRoutes } from './http/metrics';
import { createMetrics } from './metrics';
import { startHttpServer, type HttpRoute, type HttpServerHandle } from './http/server';
import { MemorySagaStore } from './store/memory-store';
import { KafkaTransport } from './transport/kafka-transport';
import { MemoryTransport } from './transport/memory-transport';
import { ALL_TOPICS, TOPICS } from '../topics/topics';
import type { SagaStore } from './engine/store';
import { PostgresSagaStore } from './store/postgres/postgres-store';

/** The orchestrator process, wired from its config. Start-up I/O lives in start(), never in a constructor. */
export class App {
  /** JOINING: calls are served while the consumer groups join; ready (/readyz) once RUNNING. */
  private state: 'NEW' | 'STARTING' | 'JOINING' | 'RUNNING' | 'DRAINING' | 'STOPPED' = 'NEW';
  private onStop?: () => void;
  private readonly closers: { name: string; close: () => Promise<void> | void }[] = [];
  private server?: GrpcServerHandle;
  private http?: HttpServerHandle;
  private store?: SagaStore;
  private transport?: Transport;
  private stopping?: Promise<void>;
  private readonly metrics: ReturnType<typeof createMetrics>;

  constructor(private readonly config: Readonly<AppConfig>, private readonly log: Logger) {
    this.metrics = createMetrics(config.metrics.enabled);
  }

  get port(): number | undefined {
    return this.server?.port;
  }

  get httpPort(): number | undefined {
    return this.http?.port;
  }

  async start(): Promise<void> {
    if (this.state !== 'NEW') throw new Error(`app cannot start from ${this.state}`);
    this.state = 'STARTING';
    const { config, log } = this;
    // First, so that the liveness probe answers (and readiness says "starting") during a slow start.
    const routes: HttpRoute[] = [...healthRoutes({ state: () => this.state, store: () => this.store, transport: () => this.transport }), ...metricsRoutes(this.metrics)];
    this.http = await startHttpServer({
      host: config.http.host, port: config.http.port, routes, log, failureOf: httpFailureOf, hostRefused: hostPolicy(config.http),
    });
    // Closed in reverse: the transport drains (compensations still call upstreams) before the examples' clients close.
    const registry = new FacadeRegistry();
    for (const example of EXAMPLES) {
      const close = example.register(registry, { upstreams: config.upstreams, examples: config.examples, log });
      if (close) this.closers.push({ name: `${example.name} clients`, close });
    }
    // Side by side: the schema check and the broker's topics are both round trips away; the protos
    // are parsed while they are under way.
    const parts = Promise.allSettled([this.createStore(), this.createTransport()]);
    const protos = loadProtos([...new Set(['orchestrator.proto', ...EXAMPLES.flatMap((e) => e.protoFiles)])]);
    const [stored, connected] = await parts;
    if (stored.status === 'fulfilled') {
      this.store = stored.value;
      this.closers.push({ name: 'store', close: () => stored.value.close() });
    }
    if (connected.status === 'fulfilled') {
      this.transport = connected.value;
      this.closers.push({ name: 'transport', close: () => connected.value.close() });
    }
    if (stored.status === 'rejected') throw stored.reason;
    if (connected.status === 'rejected') throw connected.reason;
    const [store, transport] = [stored.value, connected.value];
    if (config.transport.driver === 'memory') {
      for (const example of EXAMPLES) {
        const stop = await example.embedded?.(transport, { upstreams: config.upstreams, examples: config.examples, log });
        if (stop) this.closers.push({ name: `${example.name} embedded workers`, close: stop });
      }
    }

    const { saga, throttle, limits } = config;
    const orchestrator = new Orchestrator({
      registry, store, transport, logger: log, podId: config.podId, outcomeTopic: TOPICS.sagaOutcomes.name,
      eventTopic: TOPICS.sagaEvents.name, replyTopic: TOPICS.stepReplies.name,
      options: { ...saga, throttle, maxPayloadBytes: limits.maxPayloadBytes, maxEventsPerSaga: limits.maxEventsPerSaga }, metrics: this.metrics.engine,
    });
    this.metrics.watch({ store: () => this.store, registry, throttle: () => orchestrator.throttleLoad(), log });
    await orchestrator.open();
    this.closers.push({ name: 'orchestrator', close: () => orchestrator.shutdown() });
    // The server reads its routes per request: the console is served from the moment the engine runs.
    routes.push(...consoleRoutes(orchestrator));

    // Serving before the consumer groups are in: a restart after a kill -9 waits for Kafka to time
    // the dead member out (its session, 10 s) before they are; calls need not wait for that.
    this.server = await startGrpcServer({
      address: `${config.grpc.host}:${config.grpc.port}`,
      protos,
      log,
      services: [
        ...EXAMPLES.flatMap((e) => e.services?.(orchestrator, log) ?? []),
        { name: 'orchestrator.v1.OrchestratorService', implementation: orchestratorServiceImpl(orchestrator, log) },
      ],
    });
    // A signal during the start: stop() drains what has started, and main() exits.
    if (this.stopping) return;
    this.state = 'JOINING';
    log.info('orchestrator serving; consumers joining', { transport: config.transport.driver, port: this.server.port, uptimeMs: uptimeMs() });
    const joined = orchestrator.join();
    // A stop while joining ends the start quietly: the drain disconnects the consumers.
    const stopped = new Promise<'stopped'>((resolve) => { this.onStop = () => resolve('stopped'); });
    if (await Promise.race([joined, stopped]) === 'stopped') {
      joined.catch(() => undefined);
      return;
    }
    this.state = 'RUNNING';
    log.info('orchestrator started', { transport: config.transport.driver, port: this.server.port, uptimeMs: uptimeMs() });
  }

  /**
   * Drains: health NOT_SERVING and no new calls, in-flight calls finish (bounded by the grace
   * period), then consumers finish the messages in hand, including what those publish, while leases
   * are still renewed; then the recovery loop and renewals stop, and everything disconnects in
   * reverse order of start. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'DRAINING';
      this.onStop?.();
      this.log.info('draining', { graceMs: this.config.grpc.shutdownGraceMs });
      await this.server?.shutdown(this.config.grpc.shutdownGraceMs);
      await this.transport?.drain().catch((err: unknown) => this.log.warn('draining the transport failed', { error: String(err) }));
      for (const { name, close } of this.closers.reverse()) {
        try {
          await close();
        } catch (err) {
          this.log.warn(`closing ${name} failed`, { error: String(err) });
        }
      }
      // Last: the probes answer "draining" until the end.
      await this.http?.close();
      this.state = 'STOPPED';
      this.log.info('stopped');
    })();
    return this.stopping;
  }

  private async createStore(): Promise<SagaStore> {
    const { store, saga } = this.config;
    if (store.driver === 'memory') return new MemorySagaStore(saga.leaseTtlMs);
    return PostgresSagaStore.create({ ...store.postgres, leaseTtlMs: saga.leaseTtlMs, metrics: this.metrics.store }, this.log);
  }

  private async createTransport(): Promise<Transport> {
    if (this.config.transport.driver === 'memory') return new MemoryTransport(ALL_TOPICS, this.log, undefined, this.metrics.transport);
    // A rebalance waits for a member whose handler holds a message: a step or compensation attempt at most.
    const rebalanceTimeoutMs = Math.max(60_000, 2 * this.config.saga.stepTimeoutMs + 10_000);
    return KafkaTransport.create({ ...this.config.transport.kafka, rebalanceTimeoutMs, metrics: this.metrics.transport }, ALL_TOPICS, this.log);
  }
}

/** Since the process started: how long a start took, as its logs say. */
function uptimeMs(): number {
  return Math.round(process.uptime() * 1000);
}
