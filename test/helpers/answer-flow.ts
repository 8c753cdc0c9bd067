import * as grpc from '@grpc/grpc-js';
import type { FacadeDefinition, NodeDefinition, StepDefinition } from '../../src/engine/facade';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { Orchestrator, type EngineOptions } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import type { SagaSnapshot } from '../../src/engine/saga';
import type { Message, MessageHandler, Transport } from '../../src/engine/transport';
import { httpFailureOf } from '../../src/console/errors';
import { consoleRoutes } from '../../src/console/routes';
import { orchestratorServiceImpl } from '../../src/grpc/orchestrator-service';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { startGrpcServer } from '../../src/grpc/server';
import { hostPolicy } from '../../src/http/hosts';
import { startHttpServer } from '../../src/http/server';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import { KafkaTransport } from '../../src/transport/kafka-transport';
import type { TopicSpec } from '../../topics/topics';
import { KAFKA_BROKERS, testKafka } from './kafka';
import { waitFor } from './wait';

/**
 * The facade the tests of events and step answers drive, on real Kafka + Postgres, through the
 * orchestrator's own gRPC service (and the console's API): an external step that may loop back to
 * itself, a wait for `go`, then steps that record each run where it happens.
 *
 *   quote (external, ev.ext; output {again: true} → quote again) → go (wait) → after (step)
 *   version 2 adds `more` after `after`.
 *   Flow `Ticks`: tick (wait) → count (step) → tick again, forever: one count per tick event.
 */
export const EV_TOPICS: TopicSpec[] = [
  ...['ev.ext', 'ev.a', 'ev.rb', 'ev.events', 'ev.replies', 'outcomes'].map((name) => ({ name, partitions: 2, deadLetter: 'dlq' })),
  { name: 'dlq', partitions: 1 },
];

export const FAST: Partial<EngineOptions> = {
  stepTimeoutMs: 5_000,
  retry: { maxAttempts: 1, initialBackoffMs: 10, maxBackoffMs: 10, multiplier: 1, jitter: 0 },
  compensation: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50, multiplier: 2, jitter: 0 },
  recoveryIntervalMs: 100,
  timerPollMs: 50,
  heartbeatMs: 200,
  leaseTtlMs: 2_000,
  outcomePollMs: 50,
};

/** Every step run, as `instance:node:requestId`, in the order they ran. */
export type Runs = string[];

function step(name: string, instance: string, runs: Runs, extra: Partial<StepDefinition> = {}): StepDefinition {
  return {
    name, topic: 'ev.a', retry: { maxAttempts: 1 },
    run: async (ctx) => {
      runs.push(`${instance}:${name}:${ctx.requestId}`);
      return { ran: name, visit: ctx.visit };
    },
    ...extra,
  };
}

export function flow(version: 1 | 2, instance: string, runs: Runs): FacadeDefinition {
  const nodes: NodeDefinition[] = [
    {
      kind: 'external', name: 'quote', topic: 'ev.ext', timeoutMs: 120_000, branches: ['quote', 'go'],
      next: (output) => ((output as { again?: boolean } | null)?.again === true ? 'quote' : 'go'),
    },
    { kind: 'wait', name: 'go', events: ['go'] },
    step('after', instance, runs, { after: ['go'] }),
    ...(version === 2 ? [step('more', instance, runs, { after: ['after'] })] : []),
  ];
  return { name: 'Flow', version, mode: 'async', nodes, rollbackTopic: 'ev.rb', parseInput: (raw) => raw ?? {}, result: (r) => r };
}

export function ticks(instance: string, runs: Runs): FacadeDefinition {
  const nodes: NodeDefinition[] = [
    { kind: 'wait', name: 'tick', events: ['tick'] },
    step('count', instance, runs, { after: ['tick'], branches: ['tick'], next: () => 'tick' }),
  ];
  return { name: 'Ticks', version: 1, mode: 'async', nodes, rollbackTopic: 'ev.rb', parseInput: (raw) => raw ?? {}, result: (r) => r };
}

const protos = loadProtos(['orchestrator.proto']);

export interface Instance {
  orchestrator: Orchestrator;
  store: PostgresSagaStore;
  transport: Transport;
  /** orchestrator.v1.OrchestratorService on this instance. */
  client: grpc.Client;
  /** The console's base URL (http://127.0.0.1:port). */
  console: string;
  /** Stops consuming, as a crash would (nothing in hand is committed), then shuts the instance down. */
  stop(): Promise<void>;
  /** Stops consuming and renewing leases, as a dead process would: its sagas wait for their leases to lapse. */
  crash(): Promise<void>;
}

/**
 * One orchestrator instance on the shared broker (topics under `names.topicPrefix`, one consumer
 * group) and the shared database, with its gRPC service and console on free ports. `wrap` may
 * stand between the transport and the engine's handler (to play a crash before a commit).
 */
export async function startInstance(opts: {
  dsn: string; names: { topicPrefix: string; groupId: string }; podId: string; defs: FacadeDefinition[];
  logger?: Logger; wrap?: (handler: MessageHandler) => MessageHandler;
}): Promise<Instance> {
  const store = await PostgresSagaStore.create({ dsn: opts.dsn, poolSize: 5, leaseTtlMs: FAST.leaseTtlMs!, connectTimeoutMs: 2_000 }, silentLogger);
  const logger = opts.logger ?? silentLogger;
  const kafka = await KafkaTransport.create({ brokers: KAFKA_BROKERS, clientId: opts.podId, partitionsConsumedConcurrently: 4, connectTimeoutMs: 20_000, ...opts.names }, EV_TOPICS, logger);
  const transport: Transport = opts.wrap
    ? {
      publish: (m) => kafka.publish(m),
      subscribe: (topics, handler, o) => kafka.subscribe(topics, opts.wrap!(handler), o),
      drain: () => kafka.drain(),
      close: () => kafka.close(),
      ping: () => kafka.ping(),
    }
    : kafka;
  const registry = new FacadeRegistry();
  for (const d of opts.defs) registry.register(d);
  const orchestrator = new Orchestrator({
    registry, store, transport, logger, podId: opts.podId, outcomeTopic: 'outcomes', eventTopic: 'ev.events', replyTopic: 'ev.replies', options: FAST,
  });
  await orchestrator.start();
  const grpcServer = await startGrpcServer({
    address: '127.0.0.1:0', protos, log: silentLogger,
    services: [{ name: 'orchestrator.v1.OrchestratorService', implementation: orchestratorServiceImpl(orchestrator, silentLogger) }],
  });
  const http = await startHttpServer({
    host: '127.0.0.1', port: 0, routes: consoleRoutes(orchestrator), log: silentLogger, failureOf: httpFailureOf, hostRefused: hostPolicy({ host: '127.0.0.1', allowedHosts: [] }),
  });
  const client = new (clientOf(protos, 'orchestrator.v1.OrchestratorService'))(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
  let stopped: Promise<void> | undefined;
  const end = (releaseLeases: boolean) => (stopped ??= (async () => {
    client.close();
    await transport.drain();
    if (releaseLeases) await orchestrator.shutdown();
    else orchestrator.stop();
    await grpcServer.shutdown(1_000);
    await http.close();
    await transport.close();
    await store.close();
  })());
  return {
    orchestrator, store, transport, client, console: `http://127.0.0.1:${http.port}`,
    stop: () => end(true),
    crash: () => end(false),
  };
}

/** A worker for `ev.ext` on a consumer group of its own: answers each command on its reply topic as `answer` says (undefined: no answer). */
export async function worker(names: { topicPrefix: string; groupId: string }, answer: (cmd: { requestId: string; step: string; visit: number }) => object | undefined) {
  const commands: { requestId: string; step: string; visit: number }[] = [];
  const transport = await KafkaTransport.create({
    brokers: KAFKA_BROKERS, clientId: 'worker', partitionsConsumedConcurrently: 2, connectTimeoutMs: 20_000, topicPrefix: names.topicPrefix, groupId: `${names.groupId}-worker`,
  }, EV_TOPICS, silentLogger);
  await transport.subscribe(['ev.ext'], async (m: Message) => {
    const cmd = JSON.parse(m.value) as { requestId: string; step: string; visit: number; replyTopic: string };
    commands.push(cmd);
    const reply = answer(cmd);
    if (reply) await transport.publish({ topic: cmd.replyTopic, key: cmd.requestId, value: JSON.stringify({ step: cmd.step, visit: cmd.visit, ...reply }), headers: {} });
  });
  return { commands, stop: () => transport.close() };
}

/** Produces raw records on a topic of the test's prefix, as an outside service would. */
export async function produce(topicPrefix: string, topic: string, messages: { key: string; value: string }[]): Promise<void> {
  const producer = testKafka().producer();
  await producer.connect();
  try {
    await producer.send({ topic: topicPrefix + topic, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Polls until `key` of the saga (a visit, e.g. `quote#2`) has `status`. */
export function visitReaches(store: PostgresSagaStore, id: string, key: string, status: string): Promise<SagaSnapshot> {
  return waitFor(async () => {
    const saga = await store.get(id);
    if (saga && saga.status !== 'RUNNING') throw new Error(`saga ${id} is ${saga.status} (${saga.error ?? ''}) before ${key} is ${status}`);
    return saga?.steps.some((v) => v.name === key && v.status === status) ? saga : undefined;
  }, 60_000, `${key} of ${id} to be ${status}`);
}

/** How many history entries of `type` (for `step`, when given) the saga has. */
export function countOf(saga: SagaSnapshot, type: string, step?: string): number {
  return saga.history.filter((e) => e.type === type && (step === undefined || e.step === step)).length;
}
