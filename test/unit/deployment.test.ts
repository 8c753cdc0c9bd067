import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { AppConfig } from '../../src/config/schema';
import { DOCKERFILE, dockerfile, hostPort, ROOT, sourceOf } from '../helpers/deployment';

/**
 * The Docker deployment must agree with the orchestrator's own config: deployment/local/app.yaml
 * (read through the project's loader), deployment/local/docker-compose.yaml and deployment/Dockerfile.
 * Nothing here needs Docker: the files are parsed and cross-checked.
 */

const LOCAL_DIR = path.join(ROOT, 'deployment', 'local');
const COMPOSE_FILE = path.join(LOCAL_DIR, 'docker-compose.yaml');
const LOCAL_APP_YAML = path.join(LOCAL_DIR, 'app.yaml');

// --- docker-compose.yaml ------------------------------------------------------------------------

type Port = string | number | { target: number; published?: string | number };
type Volume = string | { type?: string; source?: string; target: string; read_only?: boolean };

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Port[];
  volumes?: Volume[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}

const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, ComposeService> };

function service(name: string): ComposeService {
  expect(compose.services, `compose services`).to.have.property(name);
  return compose.services[name];
}

/** Container ports published on the host ("HOST:CONTAINER", "IP:HOST:CONTAINER[/proto]" or long form). */
function publishedPorts(svc: ComposeService): number[] {
  return (svc.ports ?? []).flatMap((p) => {
    if (typeof p === 'object') return p.published === undefined ? [] : [p.target];
    const parts = String(p).split('/')[0].split(':');
    return parts.length >= 2 ? [Number(parts[parts.length - 1])] : [];
  });
}

function envOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  const entries: [string, string][] = Array.isArray(env)
    ? env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])
    : Object.entries(env).map(([k, v]) => [k, String(v ?? '')]);
  return Object.fromEntries(entries);
}

function dependsOn(svc: ComposeService): Record<string, string> {
  const deps = svc.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([d, v]) => [d, v.condition ?? 'service_started']));
}

/** Build context and Dockerfile as absolute paths; compose resolves the Dockerfile against the context. */
function buildPaths(svc: ComposeService): { context: string; dockerfile: string } | undefined {
  if (svc.build === undefined) return undefined;
  const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
  const context = path.resolve(LOCAL_DIR, build.context ?? '.');
  return { context, dockerfile: path.resolve(context, build.dockerfile ?? 'Dockerfile') };
}

/** Services run from the image that deployment/Dockerfile builds. */
function imageServices(): [string, ComposeService][] {
  return Object.entries(compose.services).filter(([, svc]) => buildPaths(svc)?.dockerfile === DOCKERFILE);
}

/** The command a service runs: its own, else the image's CMD. */
function commandOf(svc: ComposeService): string[] {
  if (svc.command === undefined) return dockerfile.cmd;
  return typeof svc.command === 'string' ? svc.command.trim().split(/\s+/) : svc.command;
}

/** Kafka listener lists such as "PLAINTEXT://kafka:9092,CONTROLLER://:9093". */
function listeners(spec: string | undefined): { name: string; host: string; port: number }[] {
  return (spec ?? '').split(',').filter(Boolean).map((l) => {
    const [name, address] = l.trim().split('://');
    return { name, ...hostPort(address) };
  });
}

// --- the tests ----------------------------------------------------------------------------------

describe('deployment (Dockerfile, local compose)', () => {
  let config: Readonly<AppConfig>;

  before(() => {
    // An empty environment: the host's POD_ID / OCH_* must not leak into what is checked.
    config = loadConfig(LOCAL_APP_YAML, {});
  });

  it('the root app.yaml loads with the project loader', () => {
    expect(() => loadConfig(path.join(ROOT, 'app.yaml'), {})).not.to.throw();
  });

  it('deployment/local/app.yaml listens on every interface (gRPC and HTTP) and uses Kafka', () => {
    expect(config.grpc.host).to.equal('0.0.0.0');
    expect(config.http.host).to.equal('0.0.0.0');
    expect(config.transport.driver).to.equal('kafka');
  });

  it('the orchestrator publishes grpc.port and http.port, which the image exposes', () => {
    expect(config.http.port, 'http.port').not.to.equal(config.grpc.port);
    for (const [key, port] of [['grpc.port', config.grpc.port], ['http.port', config.http.port]] as const) {
      expect(publishedPorts(service('orchestrator')), `compose publishes ${key}`).to.include(port);
      expect(dockerfile.expose, `the Dockerfile EXPOSEs ${key}`).to.include(port);
    }
  });

  it('the image listens on every interface whichever app.yaml it is given (OCH_GRPC_HOST, OCH_HTTP_HOST)', () => {
    const withImageEnv = loadConfig(path.join(ROOT, 'app.yaml'), dockerfile.env);
    expect([withImageEnv.grpc.host, withImageEnv.http.host]).to.deep.equal(['0.0.0.0', '0.0.0.0']);
  });

  for (const upstream of ['order', 'payment', 'factory', 'accounts', 'gateway', 'warehouse', 'drivers'] as const) {
    it(`upstreams.${upstream} names the compose service that runs ${upstream}, on the port it listens on and publishes`, () => {
      const { host, port } = hostPort(config.upstreams[upstream]);
      const svc = service(host);
      const [, , kind, listen] = commandOf(svc);
      expect(kind, `${host} runs`).to.equal(upstream);
      expect(hostPort(listen)).to.deep.equal({ host: '0.0.0.0', port });
      expect(publishedPorts(svc)).to.include(port);
    });
  }

  it('the Kafka brokers are the kafka service and its advertised listener port', () => {
    for (const broker of config.transport.kafka.brokers) {
      const { host, port } = hostPort(broker);
      const env = envOf(service(host));
      const advertised = listeners(env.KAFKA_ADVERTISED_LISTENERS).find((l) => l.host === host && l.port === port);
      expect(advertised, `${broker} among KAFKA_ADVERTISED_LISTENERS`).to.exist;
      const bound = listeners(env.KAFKA_LISTENERS).find((l) => l.name === advertised?.name);
      expect(bound?.port, `KAFKA_LISTENERS port of ${advertised?.name}`).to.equal(port);
    }
  });

  it('the topics\' replication factor fits the compose Kafka cluster (no more replicas than broker nodes)', () => {
    const brokerNodes = Object.values(compose.services)
      .filter((svc) => /(^|,)\s*broker\s*(,|$)/.test(envOf(svc).KAFKA_PROCESS_ROLES ?? '')).length;
    expect(brokerNodes, 'compose services with KAFKA_PROCESS_ROLES broker').to.be.at.least(1);
    expect(config.transport.kafka.replicationFactor, 'transport.kafka.replicationFactor').to.be.within(1, brokerNodes);
  });

  it('the saga store is the postgres service, with its database and password, started healthy first', () => {
    expect(config.store.driver).to.equal('postgres');
    const dsn = new URL(config.store.postgres.dsn);
    const svc = service(dsn.hostname);
    expect(String(svc.image)).to.match(/^postgres:/);
    const env = envOf(svc);
    expect(dsn.pathname.slice(1), 'database').to.equal(env.POSTGRES_DB);
    expect(dsn.password, 'password').to.equal(env.POSTGRES_PASSWORD);
    expect(Number(dsn.port || 5432)).to.equal(5432);
    expect(dependsOn(service('orchestrator'))[dsn.hostname]).to.equal('service_healthy');
  });

  it('the orchestrator starts after a healthy Kafka and after its upstreams', () => {
    const deps = dependsOn(service('orchestrator'));
    for (const broker of config.transport.kafka.brokers) {
      const kafka = hostPort(broker).host;
      expect(deps[kafka], `depends_on ${kafka}`).to.equal('service_healthy');
      expect(service(kafka).healthcheck?.test, `${kafka} healthcheck`).to.exist;
    }
    // Healthy, not just started: a call sent as soon as the orchestrator listens must find them serving.
    for (const address of Object.values(config.upstreams)) expect(deps[hostPort(address).host], `depends_on ${address}`).to.equal('service_healthy');
  });

  it('the upstreams\' healthchecks ask grpc.health.v1 on the port they listen on, with a compiled file of ours', () => {
    for (const address of Object.values(config.upstreams)) {
      const { host, port } = hostPort(address);
      const test = service(host).healthcheck?.test;
      expect(test, `${host} healthcheck`).to.be.an('array');
      const [kind, node, script, ...args] = test as string[];
      expect([kind, node], `${host} healthcheck`).to.deep.equal(['CMD', 'node']);
      expect(script, `${host} healthcheck`).to.equal('dist/src/grpc/wait-serving.js');
      expect(existsSync(sourceOf(script)), `${script} from its source`).to.equal(true);
      expect(hostPort(args[args.length - 1]), `${host} healthcheck address`).to.deep.equal({ host: '127.0.0.1', port });
    }
  });

  it('mounts this app.yaml read-only at $OCH_PATH/app.yaml', () => {
    const orchestrator = service('orchestrator');
    const ochPath = envOf(orchestrator).OCH_PATH ?? dockerfile.env.OCH_PATH;
    expect(ochPath, 'OCH_PATH (Dockerfile ENV)').to.be.a('string');
    const mount = (orchestrator.volumes ?? [])
      .map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1], read_only: v.endsWith(':ro') } : v))
      .find((v) => v.target === path.posix.join(ochPath, 'app.yaml'));
    expect(mount, `a mount at ${ochPath}/app.yaml`).to.exist;
    const source = path.resolve(LOCAL_DIR, mount?.source ?? '');
    expect(existsSync(source), `${source} exists`).to.equal(true);
    expect(source).to.equal(LOCAL_APP_YAML);
    expect(mount?.read_only).to.equal(true);
  });

  it('the factory\'s head worker reads the head commands where the orchestrator writes them: same brokers and topic prefix, Kafka healthy first', () => {
    const { host } = hostPort(config.upstreams.factory);
    const factory = service(host);
    const env = envOf(factory);
    expect(env.DEMO_KAFKA_BROKERS?.split(',').map((b) => b.trim()), 'DEMO_KAFKA_BROKERS').to.deep.equal(config.transport.kafka.brokers);
    expect(env.DEMO_TOPIC_PREFIX ?? '', 'DEMO_TOPIC_PREFIX').to.equal(config.transport.kafka.topicPrefix);
    expect(env.DEMO_KAFKA_GROUP_ID, 'DEMO_KAFKA_GROUP_ID: not one of the orchestrator\'s groups').to.be.a('string').and.not.equal(config.transport.kafka.groupId);
    for (const broker of config.transport.kafka.brokers) expect(dependsOn(factory)[hostPort(broker).host], `${host} depends_on ${broker}`).to.equal('service_healthy');
  });

  it('the orchestrator and the demo services build deployment/Dockerfile from existing paths', () => {
    expect(imageServices().map(([name]) => name)).to.have.members(['order', 'payment', 'factory', 'accounts', 'gateway', 'warehouse', 'drivers', 'orchestrator']);
    for (const [name, svc] of Object.entries(compose.services)) {
      const build = buildPaths(svc);
      if (!build) continue;
      expect(existsSync(build.context) && statSync(build.context).isDirectory(), `${name}: context ${build.context}`).to.equal(true);
      expect(existsSync(build.dockerfile), `${name}: dockerfile ${build.dockerfile}`).to.equal(true);
    }
  });

  it('every command runs a compiled file that has a TypeScript source under src/', () => {
    for (const [name, svc] of imageServices()) {
      const [node, script] = commandOf(svc);
      expect(node, `${name} command`).to.equal('node');
      const source = sourceOf(script);
      expect(path.relative(path.join(ROOT, 'src'), source), `${name}: ${script}`).not.to.match(/^\.\./);
      expect(existsSync(source), `${name}: ${script} from ${source}`).to.equal(true);
    }
  });

  it('the Dockerfile copies only paths that exist and that .dockerignore keeps in the context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(dockerfile.copySources).to.include.members(['proto', 'app.yaml', 'src/console/static']);
    for (const source of dockerfile.copySources) {
      expect(existsSync(path.join(ROOT, source)), `COPY ${source}`).to.equal(true);
      expect(ignored, `COPY ${source} is excluded by .dockerignore`).not.to.include(source);
    }
  });
});
