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
  private state: 'NEW' | 'STARTING' | 'RUNNING' | 'DRAINING' | 'STOPPED' = 'NEW';
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
    const store = await this.createStore();
    this.store = store;
    this.closers.push({ name: 'store', close: () => store.close() });
    const transport = await this.createTransport();
    this.transport = transport;
    this.closers.push({ name: 'transport', close: () => transport.close() });
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
    await orchestrator.start();
    this.closers.push({ name: 'orchestrator', close: () => orchestrator.shutdown() });
    // The server reads its routes per request: the console is served from the moment the engine runs.
    routes.push(...consoleRoutes(orchestrator));

    this.server = await startGrpcServer({
      address: `${config.grpc.host}:${config.grpc.port}`,
      protos: loadProtos([...new Set(['orchestrator.proto', ...EXAMPLES.flatMap((e) => e.protoFiles)])]),
      log,
      services: [
        ...EXAMPLES.flatMap((e) => e.services?.(orchestrator, log) ?? []),
        { name: 'orchestrator.v1.OrchestratorService', implementation: orchestratorServiceImpl(orchestrator, log) },
      ],
    });
    this.state = 'RUNNING';
    log.info('orchestrator started', { transport: config.transport.driver, port: this.server.port });
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
