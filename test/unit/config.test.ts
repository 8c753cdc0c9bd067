import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, configPath, loadConfig } from '../../src/config/load';

function yamlFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'och-config-'));
  const file = path.join(dir, 'app.yaml');
  writeFileSync(file, text);
  return file;
}

function loadError(text: string, env: NodeJS.ProcessEnv = {}): string {
  const file = yamlFile(text);
  try {
    loadConfig(file, env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message.replaceAll(file, 'FILE');
  }
  throw new Error('expected a ConfigError');
}

describe('configuration (app.yaml)', () => {
  it('fills defaults for an empty file and freezes the result', () => {
    const config = loadConfig(yamlFile(''), {});
    expect(config.grpc.port).to.equal(10000);
    expect(config.transport.driver).to.equal('memory');
    expect(config.transport.kafka.brokers).to.deep.equal(['127.0.0.1:9092']);
    expect(config.upstreams).to.deep.equal({
      order: '127.0.0.1:10001', payment: '127.0.0.1:10002', factory: '127.0.0.1:10003', accounts: '127.0.0.1:10004', gateway: '127.0.0.1:10005', warehouse: '127.0.0.1:10007', drivers: '127.0.0.1:10008',
    });
    expect(config.examples.delivery.versions).to.deep.equal([1, 2]);
    expect(Object.isFrozen(config.transport.kafka)).to.equal(true);
  });

  it('stops on an unknown key, naming the file and the key', () => {
    expect(loadError('transport:\n  kafka:\n    brokerz: [a:1]\n')).to.equal('FILE: transport.kafka.brokerz: unknown key');
    expect(loadError('colour: blue\n')).to.equal('FILE: colour: unknown key');
  });

  it('stops on a wrong type, naming the file and the key', () => {
    expect(loadError('grpc:\n  port: "ten"\n')).to.match(/^FILE: grpc\.port: .*number/);
    expect(loadError('transport:\n  driver: rabbit\n')).to.match(/^FILE: transport\.driver: /);
    expect(loadError('upstreams:\n  order: nowhere\n')).to.equal('FILE: upstreams.order: expected host:port');
  });

  it('refuses a heartbeat too slow to tell a dead owner before Kafka hands its messages on', () => {
    expect(loadConfig(yamlFile('saga:\n  heartbeatMs: 4000\n  leaseTtlMs: 10000\n'), {}).saga.heartbeatMs).to.equal(4000);
    expect(loadError('saga:\n  heartbeatMs: 4500\n  leaseTtlMs: 20000\n')).to.match(/^FILE: saga\.heartbeatMs: heartbeatMs must be at most 4000/);
  });

  it('takes the Kafka session timeout from transport.kafka.sessionTimeoutMs or OCH_KAFKA_SESSION_TIMEOUT_MS: at least 6 s, and longer than two heartbeats + 1 s', () => {
    expect(loadConfig(yamlFile(''), {}).transport.kafka.sessionTimeoutMs).to.equal(10_000);
    expect(loadConfig(yamlFile('saga:\n  heartbeatMs: 2000\ntransport:\n  kafka:\n    sessionTimeoutMs: 6000\n'), {}).transport.kafka.sessionTimeoutMs).to.equal(6_000);
    expect(loadConfig(yamlFile(''), { OCH_KAFKA_SESSION_TIMEOUT_MS: '30000' }).transport.kafka.sessionTimeoutMs).to.equal(30_000);
    expect(loadError('transport:\n  kafka:\n    sessionTimeoutMs: 5000\n')).to.match(/^FILE: transport\.kafka\.sessionTimeoutMs: /);
    // The shipped heartbeat (3 s) marks a silent owner gone after 7 s: Kafka must not hand its messages on before.
    expect(loadError('transport:\n  kafka:\n    sessionTimeoutMs: 7000\n')).to.match(/^FILE: transport\.kafka\.sessionTimeoutMs: must exceed two saga\.heartbeatMs \+ 1 s/);
  });

  it('reports invalid YAML and a missing file with the path', () => {
    expect(loadError('grpc: [\n')).to.match(/^FILE: invalid YAML/);
    expect(() => loadConfig('/nonexistent/app.yaml', {})).to.throw(ConfigError, /^\/nonexistent\/app\.yaml: cannot read/);
  });

  it('lets environment variables override keys, and names the variable when its value is wrong', () => {
    const file = yamlFile('podId: file\ntransport:\n  driver: memory\n');
    const config = loadConfig(file, { POD_ID: 'pod-7', OCH_TRANSPORT: 'kafka', OCH_KAFKA_BROKERS: 'k1:9092, k2:9092', OCH_GRPC_PORT: '10500' });
    expect(config.podId).to.equal('pod-7');
    expect(config.transport.driver).to.equal('kafka');
    expect(config.transport.kafka.brokers).to.deep.equal(['k1:9092', 'k2:9092']);
    expect(config.grpc.port).to.equal(10500);
    expect(loadError('', { OCH_GRPC_PORT: 'abc' })).to.match(/^environment variable OCH_GRPC_PORT \(grpc\.port\): /);
  });

  it('takes the Kafka topics\' replication factor from transport.kafka.replicationFactor or OCH_KAFKA_REPLICATION_FACTOR, a positive integer', () => {
    expect(loadConfig(yamlFile(''), {}).transport.kafka.replicationFactor).to.equal(1);
    const file = yamlFile('transport:\n  kafka:\n    replicationFactor: 3\n');
    expect(loadConfig(file, {}).transport.kafka.replicationFactor).to.equal(3);
    expect(loadConfig(file, { OCH_KAFKA_REPLICATION_FACTOR: '2' }).transport.kafka.replicationFactor).to.equal(2);
    expect(loadError('transport:\n  kafka:\n    replicationFactor: 0\n')).to.match(/^FILE: transport\.kafka\.replicationFactor: /);
    expect(loadError('transport:\n  kafka:\n    replicationFactor: 1.5\n')).to.match(/^FILE: transport\.kafka\.replicationFactor: .*int/);
    expect(loadError('', { OCH_KAFKA_REPLICATION_FACTOR: 'three' }))
      .to.match(/^environment variable OCH_KAFKA_REPLICATION_FACTOR \(transport\.kafka\.replicationFactor\): /);
  });

  it('switches metrics with metrics.enabled or OCH_METRICS_ENABLED (true/false, 1/0), default on', () => {
    expect(loadConfig(yamlFile(''), {}).metrics.enabled).to.equal(true);
    expect(loadConfig(yamlFile('metrics:\n  enabled: false\n'), {}).metrics.enabled).to.equal(false);
    expect(loadConfig(yamlFile(''), { OCH_METRICS_ENABLED: 'false' }).metrics.enabled).to.equal(false);
    expect(loadConfig(yamlFile('metrics: { enabled: false }\n'), { OCH_METRICS_ENABLED: '1' }).metrics.enabled).to.equal(true);
    expect(loadError('', { OCH_METRICS_ENABLED: 'off' })).to.match(/^environment variable OCH_METRICS_ENABLED \(metrics\.enabled\): .*boolean/);
    expect(loadError('metrics:\n  enabled: yes please\n')).to.match(/^FILE: metrics\.enabled: /);
  });

  it('limits a saga\'s payloads (limits.maxPayloadBytes, OCH_MAX_PAYLOAD_BYTES) well under the broker\'s message limit (transport.kafka.maxMessageBytes)', () => {
    const config = loadConfig(yamlFile(''), {});
    expect(config.limits.maxPayloadBytes).to.equal(262_144);
    expect(config.transport.kafka.maxMessageBytes).to.equal(1_000_000);
    expect(loadConfig(yamlFile('limits:\n  maxPayloadBytes: 65536\n'), {}).limits.maxPayloadBytes).to.equal(65_536);
    expect(loadConfig(yamlFile(''), { OCH_MAX_PAYLOAD_BYTES: '100000' }).limits.maxPayloadBytes).to.equal(100_000);
    expect(loadError('limits:\n  maxPayloadBytes: 10\n', {})).to.match(/limits\.maxPayloadBytes/);
  });

  it('keeps finished sagas saga.retentionMs (OCH_SAGA_RETENTION_MS), 7 days unless set; 0 keeps them forever; the shipped app.yaml says 7 days', () => {
    expect(loadConfig(yamlFile(''), {}).saga.retentionMs).to.equal(604_800_000);
    expect(loadConfig(yamlFile('saga:\n  retentionMs: 0\n'), {}).saga.retentionMs).to.equal(0);
    expect(loadConfig(yamlFile(''), { OCH_SAGA_RETENTION_MS: '3600000' }).saga.retentionMs).to.equal(3_600_000);
    expect(loadError('', { OCH_SAGA_RETENTION_MS: '-1' })).to.match(/^environment variable OCH_SAGA_RETENTION_MS \(saga\.retentionMs\): /);
    expect(loadConfig(path.resolve(__dirname, '..', '..', '..', 'app.yaml'), {}).saga.retentionMs).to.equal(604_800_000);
  });

  it('finds app.yaml through OCH_PATH', () => {
    expect(configPath({ OCH_PATH: '/etc/och' })).to.equal('/etc/och/app.yaml');
  });
});
