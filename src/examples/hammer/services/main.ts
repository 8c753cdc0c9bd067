import type { Logger } from '../../../engine/logger';
import { loadProtos } from '../../../grpc/protos';
import { startGrpcServer } from '../../../grpc/server';
import { KafkaTransport } from '../../../transport/kafka-transport';
import { CallLog, withCallLog } from '../../demo/call-log';
import { DEMO_SHUTDOWN_GRACE_MS, runDemoService } from '../../demo/run-service';
import { Factory, factoryServiceImpl, localHeadMaker } from './factory-service';
import { HEAD_WORKER_TOPICS, HeadWorker } from './head-worker';

/**
 * The hammer example's demo upstream: `node dist/src/examples/hammer/services/main.js factory <host:port>`,
 * the factory's gRPC service (factory.v1.FactoryService), state in memory. With DEMO_KAFKA_BROKERS
 * (comma-separated host:port) it also runs the head factory worker on Kafka: it consumes the head
 * commands under DEMO_TOPIC_PREFIX (set it to the orchestrator's transport.kafka.topicPrefix) in
 * consumer group DEMO_KAFKA_GROUP_ID (default demo-factory), and serves only once that group is
 * joined. Without it, head commands are left to a worker the orchestrator runs itself (embedded
 * mode), which makes heads through MakeHead.
 */
runDemoService('main.js', {
  async factory(address, log) {
    const factory = new Factory();
    const calls = new CallLog();
    const worker = await startHeadWorker(factory, calls, log);
    const server = await startGrpcServer({
      address, log, protos: loadProtos(['factory.proto']),
      services: [{ name: 'factory.v1.FactoryService', implementation: withCallLog(factoryServiceImpl(factory, log), calls) }],
    });
    return {
      async stop() {
        await server.shutdown(DEMO_SHUTDOWN_GRACE_MS);
        await worker?.stop();
      },
    };
  },
});

async function startHeadWorker(factory: Factory, calls: CallLog, log: Logger): Promise<{ stop(): Promise<void> } | undefined> {
  const brokers = (process.env.DEMO_KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0) {
    log.info('no DEMO_KAFKA_BROKERS: this factory runs no head worker (the orchestrator runs one embedded)');
    return undefined;
  }
  const transport = await KafkaTransport.create({
    brokers,
    clientId: 'demo-factory',
    groupId: process.env.DEMO_KAFKA_GROUP_ID || 'demo-factory',
    topicPrefix: process.env.DEMO_TOPIC_PREFIX ?? '',
    partitionsConsumedConcurrently: 8,
    connectTimeoutMs: 30_000,
  }, HEAD_WORKER_TOPICS, log);
  const worker = new HeadWorker({ transport, heads: localHeadMaker(factory, calls), log });
  await worker.start();
  log.info('head worker consuming', { brokers, topicPrefix: process.env.DEMO_TOPIC_PREFIX ?? '' });
  return {
    async stop() {
      // Draining first: the heads cut by stop() are then given back to the group, not retried here.
      const closed = transport.close();
      worker.stop();
      await closed;
    },
  };
}
