import { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../engine/payload';
import { DEFAULT_COMPENSATION, DEFAULT_RETRY, type RetryPolicy } from '../engine/retry';

const port = z.number().int().min(0).max(65535);
const address = z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port');
const ms = z.number().int().min(0);

function retryPolicy(defaults: RetryPolicy) {
  return z
    .object({
      maxAttempts: z.number().int().min(1).default(defaults.maxAttempts),
      initialBackoffMs: ms.default(defaults.initialBackoffMs),
      maxBackoffMs: ms.default(defaults.maxBackoffMs),
      multiplier: z.number().min(1).default(defaults.multiplier),
      jitter: z.number().min(0).max(1).default(defaults.jitter),
    })
    .strict()
    .prefault({});
}

/** The whole of app.yaml. Every object is strict: an unknown key is an error, not a silent no-op. */
export const configSchema = z
  .object({
    podId: z.string().min(1).default('local'),
    grpc: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(10000),
        /** How long in-flight calls may run on after SIGTERM before they are cut. */
        shutdownGraceMs: ms.default(10_000),
      })
      .strict()
      .prefault({}),
    /** The HTTP server beside the gRPC one: /healthz, /readyz, /metrics and the web console. */
    http: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(10090),
        /**
         * Host names (`name`, any port, or `name:port`) the console answers besides http.host and
         * localhost; any IP when bound to 0.0.0.0 or ::. A page whose DNS name was rebound to this
         * address is refused (421). The probes and /metrics answer any host.
         */
        allowedHosts: z.array(z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@]+)(?::\d{1,5})?$/, 'expected a host name, host:port or [IPv6]:port')).default([]),
      })
      .strict()
      .prefault({}),
    /** Prometheus series on the HTTP server's /metrics; off, the engine, transport and store report nothing. */
    metrics: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .prefault({}),
    transport: z
      .object({
        driver: z.enum(['memory', 'kafka']).default('memory'),
        kafka: z
          .object({
            brokers: z.array(address).min(1).default(['127.0.0.1:9092']),
            clientId: z.string().min(1).default('orchestrator'),
            groupId: z.string().min(1).default('orchestrator'),
            topicPrefix: z.string().default(''),
            partitionsConsumedConcurrently: z.number().int().min(1).default(8),
            messagesInFlight: z.number().int().min(1).default(32),
            connectTimeoutMs: ms.default(30_000),
            /** Replicas of each topic the orchestrator creates: 1 for a single broker, e.g. 3 on a cluster. */
            replicationFactor: z.number().int().min(1).default(1),
            /** The broker's message.max.bytes (or less): a larger message is refused, never retried; no produce request carries more. */
            maxMessageBytes: z.number().int().min(1_024).default(1_000_000),
            /**
             * How long the broker waits for a silent consumer before handing its partitions on: after
             * a kill -9, what the restarted process's consumer groups wait before they are in (it
             * serves meanwhile; /readyz says "joining"). At least the broker's group.min.session.timeout.ms (6 s).
             */
            sessionTimeoutMs: ms.min(6_000).default(10_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    upstreams: z
      .object({
        order: address.default('127.0.0.1:10001'),
        payment: address.default('127.0.0.1:10002'),
        /** The hammer example's factory (src/examples/hammer/services). */
        factory: address.default('127.0.0.1:10003'),
        /** The transfer example's accounts and payment gateway (src/examples/transfer/services). */
        accounts: address.default('127.0.0.1:10004'),
        gateway: address.default('127.0.0.1:10005'),
        /** The order delivery example's warehouse (src/examples/delivery/services). */
        warehouse: address.default('127.0.0.1:10007'),
        /** The ride-hailing bargain example's drivers (src/examples/bargain/services). */
        drivers: address.default('127.0.0.1:10008'),
      })
      .strict()
      .prefault({}),
    examples: z
      .object({
        delivery: z
          .object({
            /** Which versions of OrderDelivery this process registers (e.g. [1] before version 2 is deployed). */
            versions: z.array(z.coerce.number().int().min(1)).min(1).default([1, 2]),
          })
          .strict()
          .prefault({}),
        /** The park bench's ParkSleep facade (bench/park.ts): off unless a bench turns it on. */
        park: z
          .object({ enabled: z.boolean().default(false) })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    saga: z
      .object({
        /** Upper bound for one attempt of a step or a compensation. */
        stepTimeoutMs: ms.min(1).default(30_000),
        /** Deadline of an async saga; sync and throttled sagas use the caller's gRPC deadline. */
        asyncDeadlineMs: ms.min(1).default(300_000),
        /** Deadline of a sync or throttled saga whose caller sets none. */
        callDeadlineMs: ms.min(1).default(60_000),
        retry: retryPolicy(DEFAULT_RETRY),
        compensation: retryPolicy(DEFAULT_COMPENSATION),
        /** An instance that stops renewing its leases for this long loses its sagas to the others. */
        leaseTtlMs: ms.min(100).default(10_000),
        heartbeatMs: ms.min(10).default(3_000),
        recoveryIntervalMs: ms.min(10).default(1_000),
        /** How often an instance looks for its own due timers (waits, sleeps, retries): how late one may fire. */
        timerPollMs: ms.min(5).default(50),
        /** How many times a loop may come back to one node before the saga fails (a node may set its own). */
        maxVisits: z.number().int().min(1).default(100),
        /**
         * How long a finished saga (COMPLETED, COMPENSATED) and its steps and events are kept before
         * they are deleted (a facade may set its own); 0 keeps them forever. COMPENSATION_FAILED
         * sagas are never deleted: an operator must see them.
         */
        retentionMs: ms.default(7 * 86_400_000),
      })
      .strict()
      .refine((s) => s.heartbeatMs * 2 <= s.leaseTtlMs, { message: 'heartbeatMs must be at most half of leaseTtlMs', path: ['heartbeatMs'] })
      // A lease unrenewed for two heartbeats + 1 s marks its owner gone (steps it may have run are run
      // again as new attempts): that must come before Kafka's 10 s session timeout hands the owner's
      // messages to another instance.
      .refine((s) => s.heartbeatMs <= 4_000, { message: 'heartbeatMs must be at most 4000 (two heartbeats + 1 s must stay under the Kafka session timeout, 10 s)', path: ['heartbeatMs'] })
      .prefault({}),
    /** What a saga takes in: larger values are refused with INVALID_ARGUMENT where they enter. */
    limits: z
      .object({
        /**
         * A facade's input, an event payload, an external step's output or error (gRPC, console,
         * Kafka), and what an in-process step returns (over it, the step fails): bytes of JSON.
         */
        maxPayloadBytes: z.number().int().min(1_024).default(DEFAULT_MAX_PAYLOAD_BYTES),
        /** Events one saga takes in, kept or taken (a cancel event is always taken): beyond, RESOURCE_EXHAUSTED. */
        maxEventsPerSaga: z.number().int().min(1).default(1_000),
      })
      .strict()
      .prefault({}),
    throttle: z
      .object({
        /** Throttled sagas running at once per instance. */
        maxConcurrent: z.number().int().min(1).default(64),
        /** Calls waiting for a slot; beyond that RESOURCE_EXHAUSTED at once. */
        maxQueue: z.number().int().min(0).default(1_000),
      })
      .strict()
      .prefault({}),
    store: z
      .object({
        driver: z.enum(['memory', 'postgres']).default('memory'),
        postgres: z
          .object({
            dsn: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/postgres'),
            poolSize: z.number().int().min(1).default(10),
            connectTimeoutMs: ms.min(1).default(2_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    log: z
      .object({ level: z.enum(['error', 'warn', 'info', 'debug']).default('info') })
      .strict()
      .prefault({}),
  })
  .strict()
  // See saga.heartbeatMs: an owner is known gone (two heartbeats + 1 s) before its messages are handed on.
  .refine((c) => 2 * c.saga.heartbeatMs + 1_000 < c.transport.kafka.sessionTimeoutMs, {
    message: 'must exceed two saga.heartbeatMs + 1 s (a lease owner is known gone before Kafka hands its messages on)',
    path: ['transport', 'kafka', 'sessionTimeoutMs'],
  });

export type AppConfig = z.infer<typeof configSchema>;

/** Environment variables that override app.yaml keys (12-factor style deployments). */
export const ENV_OVERRIDES: Readonly<Record<string, { path: string; type: 'string' | 'number' | 'list' | 'boolean' }>> = {
  POD_ID: { path: 'podId', type: 'string' },
  OCH_GRPC_HOST: { path: 'grpc.host', type: 'string' },
  OCH_GRPC_PORT: { path: 'grpc.port', type: 'number' },
  OCH_HTTP_HOST: { path: 'http.host', type: 'string' },
  OCH_HTTP_PORT: { path: 'http.port', type: 'number' },
  OCH_HTTP_ALLOWED_HOSTS: { path: 'http.allowedHosts', type: 'list' },
  OCH_METRICS_ENABLED: { path: 'metrics.enabled', type: 'boolean' },
  OCH_TRANSPORT: { path: 'transport.driver', type: 'string' },
  OCH_KAFKA_BROKERS: { path: 'transport.kafka.brokers', type: 'list' },
  OCH_KAFKA_GROUP_ID: { path: 'transport.kafka.groupId', type: 'string' },
  OCH_TOPIC_PREFIX: { path: 'transport.kafka.topicPrefix', type: 'string' },
  OCH_KAFKA_REPLICATION_FACTOR: { path: 'transport.kafka.replicationFactor', type: 'number' },
  OCH_KAFKA_SESSION_TIMEOUT_MS: { path: 'transport.kafka.sessionTimeoutMs', type: 'number' },
  OCH_ORDER_ADDR: { path: 'upstreams.order', type: 'string' },
  OCH_PAYMENT_ADDR: { path: 'upstreams.payment', type: 'string' },
  OCH_FACTORY_ADDR: { path: 'upstreams.factory', type: 'string' },
  OCH_ACCOUNTS_ADDR: { path: 'upstreams.accounts', type: 'string' },
  OCH_GATEWAY_ADDR: { path: 'upstreams.gateway', type: 'string' },
  OCH_WAREHOUSE_ADDR: { path: 'upstreams.warehouse', type: 'string' },
  OCH_DRIVERS_ADDR: { path: 'upstreams.drivers', type: 'string' },
  OCH_DELIVERY_VERSIONS: { path: 'examples.delivery.versions', type: 'list' },
  OCH_PARK_EXAMPLE: { path: 'examples.park.enabled', type: 'boolean' },
  OCH_LOG_LEVEL: { path: 'log.level', type: 'string' },
  OCH_MAX_PAYLOAD_BYTES: { path: 'limits.maxPayloadBytes', type: 'number' },
  OCH_MAX_EVENTS_PER_SAGA: { path: 'limits.maxEventsPerSaga', type: 'number' },
  OCH_THROTTLE_MAX_CONCURRENT: { path: 'throttle.maxConcurrent', type: 'number' },
  OCH_THROTTLE_MAX_QUEUE: { path: 'throttle.maxQueue', type: 'number' },
  OCH_STORE: { path: 'store.driver', type: 'string' },
  OCH_SAGA_RETENTION_MS: { path: 'saga.retentionMs', type: 'number' },
  OCH_POSTGRES_DSN: { path: 'store.postgres.dsn', type: 'string' },
};
