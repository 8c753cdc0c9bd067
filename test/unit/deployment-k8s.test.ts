import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { AppConfig } from '../../src/config/schema';
import { healthRoutes } from '../../src/http/health';
import { dockerfile, ROOT, sourceOf } from '../helpers/deployment';

/**
 * deployment/k8s must agree with itself, with the image (deployment/Dockerfile) and with the
 * orchestrator's own config: the ConfigMap's app.yaml is read by the project's loader, with the
 * environment the Deployment and the image give it. No cluster needed: the manifests are parsed.
 */

const K8S_DIR = path.join(ROOT, 'deployment', 'k8s');

interface Manifest { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [key: string]: unknown }
type Labels = Record<string, string>;
type PortRef = string | number;
interface Probe { httpGet?: { path: string; port: PortRef } }
interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } } }
interface Container {
  name: string;
  image: string;
  command?: string[];
  ports: { name: string; containerPort: number }[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string; items?: { key: string; path: string }[] } }[];
}
interface Deployment extends Manifest { spec: { replicas: number; selector: { matchLabels: Labels }; template: { metadata: { labels: Labels; annotations?: Labels }; spec: PodSpec } } }
interface Service extends Manifest { spec: { selector: Labels; ports: { name: string; port: number; targetPort: PortRef }[] } }
interface Pdb extends Manifest { spec: { minAvailable?: number; maxUnavailable?: number; selector: { matchLabels: Labels } } }
interface ConfigMap extends Manifest { data: Record<string, string> }

const files = readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f));
const manifests: Manifest[] = files.filter((f) => f !== 'kustomization.yaml').flatMap((f) => parseAllDocuments(readFileSync(path.join(K8S_DIR, f), 'utf8')).map((d) => {
  expect(d.errors, `${f}: YAML errors`).to.deep.equal([]);
  return d.toJS() as Manifest;
}));

function one<T extends Manifest>(kind: string): T {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found, `one ${kind} in deployment/k8s`).to.have.length(1);
  return found[0] as T;
}

const deployment = one<Deployment>('Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers.find((c) => c.name === 'orchestrator') ?? pod.containers[0];
const service = one<Service>('Service');
const pdb = one<Pdb>('PodDisruptionBudget');
const configMap = one<ConfigMap>('ConfigMap');

const envValue = (name: string) => container.env?.find((e) => e.name === name);
const matches = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A container port by name or number, as probes and Services refer to it. */
function containerPort(ref: PortRef): number | undefined {
  return typeof ref === 'number' ? container.ports.find((p) => p.containerPort === ref)?.containerPort : container.ports.find((p) => p.name === ref)?.containerPort;
}

/** Mi/Gi/M/G quantities in bytes. */
function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity);
  expect(m, `memory quantity ${quantity}`).to.not.equal(null);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m![2] as 'Ki'] ?? 1;
  return Number(m![1]) * unit;
}

describe('deployment (Kubernetes manifests in deployment/k8s)', () => {
  let config: Readonly<AppConfig>;

  before(() => {
    // The config a pod runs with: the ConfigMap's app.yaml at $OCH_PATH, the image's ENV and the
    // Deployment's env (POD_ID from the pod's name; the optional Secret absent).
    const dir = mkdtempSync(path.join(tmpdir(), 'och-k8s-'));
    writeFileSync(path.join(dir, 'app.yaml'), configMap.data['app.yaml']);
    const env: NodeJS.ProcessEnv = { ...dockerfile.env };
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'orchestrator-5d8f7c9b6-x2x9q';
    }
    delete env.OCH_PATH;
    config = loadConfig(path.join(dir, 'app.yaml'), env);
  });

  it('kustomization.yaml lists every manifest of the directory', () => {
    const kustomization = parseAllDocuments(readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8'))[0].toJS() as { kind: string; resources: string[] };
    expect(kustomization.kind).to.equal('Kustomization');
    expect(kustomization.resources).to.have.members(files.filter((f) => f !== 'kustomization.yaml'));
    expect(manifests.map((m) => m.kind)).to.have.members(['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget']);
  });

  it('the ConfigMap\'s app.yaml loads with the project\'s loader, listening on every interface, on Kafka and Postgres', () => {
    expect(configMap.data).to.have.property('app.yaml');
    expect(config.grpc.host, 'grpc.host').to.equal('0.0.0.0');
    expect(config.http.host, 'http.host').to.equal('0.0.0.0');
    // Also without the image's OCH_*_HOST: the file itself must be right.
    const dir = mkdtempSync(path.join(tmpdir(), 'och-k8s-'));
    writeFileSync(path.join(dir, 'app.yaml'), configMap.data['app.yaml']);
    const fileOnly = loadConfig(path.join(dir, 'app.yaml'), {});
    expect([fileOnly.grpc.host, fileOnly.http.host]).to.deep.equal(['0.0.0.0', '0.0.0.0']);
    // Replicas share sagas only through Kafka and Postgres; the in-memory parts are per process.
    expect(deployment.spec.replicas).to.be.greaterThan(1);
    expect(config.transport.driver).to.equal('kafka');
    expect(config.store.driver).to.equal('postgres');
  });

  it('each pod has its own POD_ID (its name) and reads the ConfigMap mounted at $OCH_PATH', () => {
    expect(envValue('POD_ID')?.valueFrom?.fieldRef?.fieldPath, 'POD_ID from metadata.name').to.equal('metadata.name');
    expect(config.podId).to.equal('orchestrator-5d8f7c9b6-x2x9q');
    const ochPath = envValue('OCH_PATH')?.value ?? dockerfile.env.OCH_PATH;
    const mount = container.volumeMounts?.find((m) => m.mountPath === ochPath);
    expect(mount, `a volume mounted at OCH_PATH ${ochPath}`).to.exist;
    expect(mount?.readOnly).to.equal(true);
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name, 'the mounted volume is the ConfigMap').to.equal(configMap.metadata.name);
    // All keys, or an item that keeps app.yaml under its own name.
    if (volume?.configMap?.items) expect(volume.configMap.items).to.deep.include({ key: 'app.yaml', path: 'app.yaml' });
    const secret = envValue('OCH_POSTGRES_DSN')?.valueFrom?.secretKeyRef;
    if (secret) expect(secret.optional, 'the Postgres Secret is optional (the ConfigMap has a DSN)').to.equal(true);
  });

  it('container ports are grpc.port and http.port, which the image exposes', () => {
    expect(containerPort('grpc'), 'container port grpc').to.equal(config.grpc.port);
    expect(containerPort('http'), 'container port http').to.equal(config.http.port);
    expect(dockerfile.expose).to.include.members([config.grpc.port, config.http.port]);
  });

  it('the Service selects the pods and forwards both ports to them', () => {
    expect(matches(service.spec.selector, deployment.spec.template.metadata.labels), 'Service selector matches the pod labels').to.equal(true);
    const targets = Object.fromEntries(service.spec.ports.map((p) => [p.name, containerPort(p.targetPort)]));
    expect(targets).to.deep.equal({ grpc: config.grpc.port, http: config.http.port });
    expect(service.spec.ports.find((p) => p.name === 'grpc')?.port).to.equal(config.grpc.port);
  });

  it('liveness asks /healthz and readiness /readyz on the HTTP port, paths the server answers', () => {
    const served = healthRoutes({ state: () => 'RUNNING', store: () => undefined, transport: () => undefined }).map((r) => r.path);
    for (const [probe, path_] of [[container.livenessProbe, '/healthz'], [container.readinessProbe, '/readyz']] as const) {
      expect(probe?.httpGet?.path, `probe on ${path_}`).to.equal(path_);
      expect(containerPort(probe!.httpGet!.port), `${path_} probe port`).to.equal(config.http.port);
      expect(served).to.include(path_);
    }
  });

  it('the grace period outlasts preStop, grpc.shutdownGraceMs and one step attempt (saga.stepTimeoutMs)', () => {
    const preStop = container.lifecycle?.preStop;
    const preStopMs = preStop?.sleep ? preStop.sleep.seconds * 1_000 : preStop?.exec?.command[0] === 'sleep' ? Number(preStop.exec.command[1]) * 1_000 : 0;
    expect(pod.terminationGracePeriodSeconds, 'terminationGracePeriodSeconds').to.be.a('number');
    expect(pod.terminationGracePeriodSeconds! * 1_000).to.be.greaterThan(preStopMs + config.grpc.shutdownGraceMs + config.saga.stepTimeoutMs);
  });

  it('runs the image\'s command, a compiled file of ours, as a non-root uid the kubelet can check', () => {
    expect(container.command ?? dockerfile.cmd).to.deep.equal(dockerfile.cmd);
    const [node, script] = dockerfile.cmd;
    expect(node).to.equal('node');
    expect(sourceOf(script)).to.match(/src\/main\.ts$/);
    expect(container.image).to.match(/^([^/]+\/)*saga-orchestrator:[\w.-]+$/).and.not.match(/:latest$/);
    expect(pod.securityContext?.runAsNonRoot).to.equal(true);
    // A USER given by name cannot be verified as non-root: runAsUser must say the uid.
    if (!/^\d+$/.test(dockerfile.user ?? '')) expect(pod.securityContext?.runAsUser, `runAsUser for USER ${dockerfile.user}`).to.be.a('number').greaterThan(0);
  });

  it('asks for CPU and memory, with a memory limit above the request', () => {
    const { requests, limits } = container.resources ?? {};
    expect(requests, 'resources.requests').to.have.all.keys('cpu', 'memory');
    expect(limits, 'resources.limits').to.have.property('memory');
    expect(bytes(limits!.memory)).to.be.at.least(bytes(requests!.memory));
  });

  it('the Deployment selects its own pods; the PodDisruptionBudget selects the same, leaving one to drain', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(matches(deployment.spec.selector.matchLabels, labels), 'Deployment selector matches its pod labels').to.equal(true);
    expect(pdb.spec.selector.matchLabels).to.deep.equal(deployment.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable ?? deployment.spec.replicas - (pdb.spec.maxUnavailable ?? 0), 'pods kept by the budget').to.be.within(1, deployment.spec.replicas - 1);
  });

  it('Prometheus scrapes /metrics on the HTTP port', () => {
    const annotations = deployment.spec.template.metadata.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).to.equal('true');
    expect(Number(annotations['prometheus.io/port'])).to.equal(config.http.port);
    expect(annotations['prometheus.io/path']).to.equal('/metrics');
  });
});
