import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { loadConfig } from '../../src/config/load';
import type { AppConfig } from '../../src/config/schema';
import { clientOf, loadProtos } from '../../src/grpc/protos';
import { ROOT_APP_YAML } from './shipped-config';
import { unreachable, waitFor } from './wait';

/** Saga statuses that never change (COMPENSATION_FAILED may: RetryCompensation). */
const ENDED = ['COMPLETED', 'COMPENSATED'];

/** Repository root, from dist/test/helpers. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A spawned node process with its stdout kept as lines. */
export class Proc {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Parsed JSON log lines (the processes log JSON; anything else is kept as text in `lines`). */
  logs(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
}

const healthProto = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
  grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient } } };
};
type HealthClient = grpc.Client & {
  Check(request: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
};

export function healthCheck(address: string, service = ''): Promise<string> {
  const client = new healthProto.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 1_000 }, (err: grpc.ServiceError | null, res?: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    });
  });
}

export async function waitServing(address: string, proc: Proc, timeoutMs = 30_000): Promise<void> {
  const died = proc.exited.then((code) => {
    throw new Error(`process exited with ${code} before serving:\n${proc.lines.slice(-20).join('\n')}`);
  });
  const serving = waitFor(async () => (await healthCheck(address)) === 'SERVING', timeoutMs, `${address} to serve`).catch((err) => {
    throw new Error(`${(err as Error).message}\n${proc.lines.slice(-20).join('\n')}`);
  });
  await Promise.race([serving, died]);
  died.catch(() => undefined);
}

/**
 * Polls /readyz until it says ready: the consumer groups are in. gRPC is served before that, while
 * they join (seconds after a kill -9), and tests that drive sagas through Kafka start from ready.
 */
export async function waitReady(httpPort: number, proc: Proc, timeoutMs = 60_000): Promise<void> {
  const died = proc.exited.then((code) => {
    throw new Error(`process exited with ${code} before ready:\n${proc.lines.slice(-20).join('\n')}`);
  });
  const ready = waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, timeoutMs, `127.0.0.1:${httpPort}/readyz to say ready`);
  await Promise.race([ready, died]);
  died.catch(() => undefined);
}

const protos = loadProtos(['booking.proto', 'orchestrator.proto', 'order.proto', 'payment.proto', 'factory.proto', 'accounts.proto', 'gateway.proto', 'warehouse.proto', 'drivers.proto']);

/** Calls a unary method and resolves with the response and the response (header) metadata. */
export function call<Res = Record<string, unknown>>(
  client: grpc.Client, method: string, request: object, metadata: Record<string, string> = {}, deadlineMs = 15_000,
): Promise<{ response: Res; headers: grpc.Metadata }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method];
    const c = fn.call(client, request, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, response: Res) => {
      if (err) reject(err);
      else resolve({ response, headers });
    });
    c.on('metadata', (m: grpc.Metadata) => { headers = m; });
  });
}

export interface StackOptions {
  transport: 'memory' | 'kafka';
  kafka?: { topicPrefix: string; groupId: string; brokers: string[] };
  /** A Postgres DSN: the saga store; the in-memory store when absent. */
  postgres?: string;
  /** Extra app.yaml keys, merged at the top level. */
  extraYaml?: string;
  /**
   * The shipped app.yaml whose `saga` block and connect timeouts the stack runs with (default: the
   * root app.yaml, which `make run` and the image use): tests run the timings users get.
   */
  shippedConfig?: string;
  /** `saga` keys over the shipped ones; a test that sets one says at the override why it needs it. */
  saga?: SagaOverrides;
  /**
   * Also runs the hammer example's factory; on Kafka, with its head worker consuming the stack's
   * head commands (same brokers and topic prefix, a consumer group of its own).
   */
  factory?: boolean;
  /** Also runs the transfer example's accounts and gateway; the gateway refuses the first N calls of each key (DEMO_GATEWAY_UNAVAILABLE_FIRST). */
  transfer?: { gatewayUnavailableFirst?: number };
  /** Also runs the order delivery example's warehouse. */
  delivery?: boolean;
  /** Also runs the ride-hailing bargain example's drivers. */
  bargain?: boolean;
  /** Extra environment of the orchestrator process (e.g. OCH_DELIVERY_VERSIONS). */
  orchestratorEnv?: NodeJS.ProcessEnv;
  /** The HTTP port (default: a free one), e.g. the shipped app.yaml's, which a browser must be able to open. */
  httpPort?: number;
}

/** `saga` keys of app.yaml, each optional, a retry policy's fields too. */
export type SagaOverrides = { [K in keyof AppConfig['saga']]?: AppConfig['saga'][K] extends object ? Partial<AppConfig['saga'][K]> : AppConfig['saga'][K] };

/** The shipped saga block with a test's overrides on top (a retry policy's unset fields stay shipped). */
export function sagaConfig(shipped: AppConfig['saga'], overrides: SagaOverrides = {}): AppConfig['saga'] {
  const merged: Record<string, unknown> = { ...shipped };
  for (const [key, value] of Object.entries(overrides)) {
    const base = merged[key];
    merged[key] = typeof value === 'object' && typeof base === 'object' ? { ...base, ...value } : value;
  }
  return merged as AppConfig['saga'];
}

/** What GetSaga answers (orchestrator.v1.Saga), as far as the tests read it. */
export type SagaView = Record<string, unknown> & {
  status: string;
  output_json: string;
  error_code: string;
  steps: { name: string; status: string; attempts: number; output_json: string; error: string }[];
};

/**
 * The order and payment services and the orchestrator, as separate processes on free ports; on
 * request the other examples' demo services too (the orchestrator is always given their ports).
 */
export class Stack {
  readonly procs: Proc[] = [];
  orchestrator!: Proc;
  order!: Proc;
  address = '';
  ports = { orchestrator: 0, order: 0, payment: 0, factory: 0, accounts: 0, gateway: 0, warehouse: 0, drivers: 0, http: 0 };
  booking!: grpc.Client;
  sagas!: grpc.Client;
  orders!: grpc.Client;
  payments!: grpc.Client;
  /** The hammer example's factory (factory.v1.FactoryService). */
  factory!: grpc.Client;
  /** The transfer example's accounts (accounts.v1.AccountsService) and gateway (gateway.v1.PaymentGatewayService). */
  accounts!: grpc.Client;
  gateway!: grpc.Client;
  /** The order delivery example's warehouse (warehouse.v1.WarehouseService). */
  warehouse!: grpc.Client;
  /** The ride-hailing bargain example's drivers (drivers.v1.DriverService). */
  drivers!: grpc.Client;
  dir = '';
  private orchestratorEnv: NodeJS.ProcessEnv = {};

  /** A stack that fails to start stops what it had started (no process outlives the test run). */
  static async start(opts: StackOptions): Promise<Stack> {
    const stack = new Stack();
    try {
      await stack.start(opts);
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  private async start(opts: StackOptions): Promise<void> {
    this.ports = {
      orchestrator: await freePort(), order: await freePort(), payment: await freePort(), factory: await freePort(), accounts: await freePort(), gateway: await freePort(), warehouse: await freePort(), drivers: await freePort(), http: opts.httpPort ?? await freePort(),
    };
    this.orchestratorEnv = opts.orchestratorEnv ?? {};
    this.dir = mkdtempSync(path.join(tmpdir(), 'och-e2e-'));
    const kafka = opts.kafka;
    const upstreams: Promise<void>[] = [];
    const serve = (kind: keyof Stack['ports'], script: string, env: NodeJS.ProcessEnv = {}) => {
      const address = `127.0.0.1:${this.ports[kind]}`;
      upstreams.push(waitServing(address, this.spawn([script, kind, address], env)));
    };
    upstreams.push(waitServing(`127.0.0.1:${this.ports.order}`, this.spawnOrder()));
    serve('payment', 'dist/src/examples/booking/services/main.js');
    if (opts.factory) {
      serve('factory', 'dist/src/examples/hammer/services/main.js', kafka
        ? { DEMO_KAFKA_BROKERS: kafka.brokers.join(','), DEMO_TOPIC_PREFIX: kafka.topicPrefix, DEMO_KAFKA_GROUP_ID: `${kafka.groupId}.demo-factory` }
        : {});
    }
    if (opts.transfer) {
      serve('accounts', 'dist/src/examples/transfer/services/main.js');
      serve('gateway', 'dist/src/examples/transfer/services/main.js', { DEMO_GATEWAY_UNAVAILABLE_FIRST: String(opts.transfer.gatewayUnavailableFirst ?? 0) });
    }
    if (opts.delivery) serve('warehouse', 'dist/src/examples/delivery/services/main.js');
    if (opts.bargain) serve('drivers', 'dist/src/examples/bargain/services/main.js');
    const shipped = loadConfig(opts.shippedConfig ?? ROOT_APP_YAML, {});
    // JSON is YAML: the merged block goes in as one flow mapping.
    const saga = JSON.stringify(sagaConfig(shipped.saga, opts.saga));
    writeFileSync(path.join(this.dir, 'app.yaml'), [
      'podId: e2e',
      `grpc: { host: 127.0.0.1, port: ${this.ports.orchestrator}, shutdownGraceMs: ${shipped.grpc.shutdownGraceMs} }`,
      `http: { host: 127.0.0.1, port: ${this.ports.http} }`,
      'transport:',
      `  driver: ${opts.transport}`,
      ...(kafka ? [`  kafka: { brokers: [${kafka.brokers.join(', ')}], topicPrefix: "${kafka.topicPrefix}", groupId: ${kafka.groupId}, connectTimeoutMs: ${shipped.transport.kafka.connectTimeoutMs} }`] : []),
      `upstreams: { ${(['order', 'payment', 'factory', 'accounts', 'gateway', 'warehouse', 'drivers'] as const).map((u) => `${u}: 127.0.0.1:${this.ports[u]}`).join(', ')} }`,
      ...(opts.postgres ? [`store: { driver: postgres, postgres: { dsn: "${opts.postgres}", connectTimeoutMs: ${shipped.store.postgres.connectTimeoutMs} } }`] : []),
      `saga: ${saga}`,
      opts.extraYaml ?? '',
    ].join('\n'));
    this.address = `127.0.0.1:${this.ports.orchestrator}`;
    await Promise.all([...upstreams, this.startOrchestrator()]);
    const creds = grpc.credentials.createInsecure();
    this.booking = new (clientOf(protos, 'pb.BookingService'))(this.address, creds);
    this.sagas = new (clientOf(protos, 'orchestrator.v1.OrchestratorService'))(this.address, creds);
    this.orders = new (clientOf(protos, 'order.v1.OrderService'))(`127.0.0.1:${this.ports.order}`, creds);
    this.payments = new (clientOf(protos, 'payment.v1.PaymentService'))(`127.0.0.1:${this.ports.payment}`, creds);
    this.factory = new (clientOf(protos, 'factory.v1.FactoryService'))(`127.0.0.1:${this.ports.factory}`, creds);
    this.accounts = new (clientOf(protos, 'accounts.v1.AccountsService'))(`127.0.0.1:${this.ports.accounts}`, creds);
    this.gateway = new (clientOf(protos, 'gateway.v1.PaymentGatewayService'))(`127.0.0.1:${this.ports.gateway}`, creds);
    this.warehouse = new (clientOf(protos, 'warehouse.v1.WarehouseService'))(`127.0.0.1:${this.ports.warehouse}`, creds);
    this.drivers = new (clientOf(protos, 'drivers.v1.DriverService'))(`127.0.0.1:${this.ports.drivers}`, creds);
  }

  /** The order service keeps its orders and call counts in the stack's directory across restarts. */
  private spawnOrder(): Proc {
    this.order = this.spawn(['dist/src/examples/booking/services/main.js', 'order', `127.0.0.1:${this.ports.order}`], { DEMO_STATE_FILE: path.join(this.dir, 'order-state.json') });
    return this.order;
  }

  /** Stops the order service (SIGTERM: in-flight calls finish, its state is kept). */
  async stopOrder(): Promise<void> {
    this.order.kill('SIGTERM');
    await this.order.exited;
  }

  /** Starts the order service again on its port, with the state it had. */
  async startOrder(): Promise<void> {
    await waitServing(`127.0.0.1:${this.ports.order}`, this.spawnOrder());
  }

  /**
   * (Re)starts the orchestrator process on the stack's port; the previous one must have exited.
   * `env` replaces the stack's orchestratorEnv for this process (e.g. another OCH_DELIVERY_VERSIONS: a deployment).
   */
  async startOrchestrator(podId = 'e2e', env: NodeJS.ProcessEnv = this.orchestratorEnv): Promise<Proc> {
    this.orchestrator = this.spawn(['dist/src/main.js'], { ...env, OCH_PATH: this.dir, POD_ID: podId });
    await waitServing(this.address, this.orchestrator, 60_000);
    await waitReady(this.ports.http, this.orchestrator);
    return this.orchestrator;
  }

  /** A further orchestrator instance on its own port, same config (same consumer group and store). */
  async startInstance(podId: string): Promise<{ proc: Proc; address: string }> {
    const [port, httpPort] = [await freePort(), await freePort()];
    const proc = this.spawn(['dist/src/main.js'], { ...this.orchestratorEnv, OCH_PATH: this.dir, POD_ID: podId, OCH_GRPC_PORT: String(port), OCH_HTTP_PORT: String(httpPort) });
    await waitServing(`127.0.0.1:${port}`, proc, 60_000);
    await waitReady(httpPort, proc);
    return { proc, address: `127.0.0.1:${port}` };
  }

  spawn(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const proc = new Proc(args, { OCH_LOG_LEVEL: 'info', ...env });
    this.procs.push(proc);
    return proc;
  }

  async saga(requestId: string): Promise<SagaView> {
    return (await call<SagaView>(this.sagas, 'GetSaga', { request_id: requestId })).response;
  }

  /** StartSaga: the facade's saga on `input`, under `requestId` (x-request-id); answers its request id. */
  async startSaga(facade: string, input: unknown, requestId: string, version = 1): Promise<{ request_id: string }> {
    return (await call<{ request_id: string }>(this.sagas, 'StartSaga', { facade, input_json: JSON.stringify(input), version }, { 'x-request-id': requestId })).response;
  }

  /** SendEvent: `event` with its payload to the saga `requestId`. */
  async sendEvent(requestId: string, event: string, payload: unknown, idempotencyKey: string): Promise<void> {
    await call(this.sagas, 'SendEvent', { request_id: requestId, event, payload_json: JSON.stringify(payload), idempotency_key: idempotencyKey });
  }

  /**
   * Polls GetSaga until the saga reaches `status`; fails at once if it ends otherwise (COMPLETED and
   * COMPENSATED never change), with the saga's error, rather than at the timeout.
   */
  async sagaReaches(requestId: string, status: string, timeoutMs = 10_000) {
    return waitFor(async () => {
      const saga = await this.saga(requestId);
      if (saga.status !== status && ENDED.includes(saga.status)) unreachable(`saga ${requestId} ended ${saga.status} ${saga.error_code}: ${String(saga.error)}`);
      return saga.status === status ? saga : undefined;
    }, timeoutMs, `saga ${requestId} to reach ${status}`);
  }

  /** Orders and payments per request id, as the upstream services see them. */
  async ledger(): Promise<Map<string, { orders: string[]; payments: string[] }>> {
    const orders = (await call<{ orders: { request_id: string; status: string }[] }>(this.orders, 'ListOrders', {})).response.orders;
    const payments = (await call<{ payments: { request_id: string; status: string }[] }>(this.payments, 'ListPayments', {})).response.payments;
    const byId = new Map<string, { orders: string[]; payments: string[] }>();
    const entry = (id: string) => byId.get(id) ?? byId.set(id, { orders: [], payments: [] }).get(id)!;
    for (const o of orders) entry(o.request_id).orders.push(o.status);
    for (const p of payments) entry(p.request_id).payments.push(p.status);
    return byId;
  }

  /**
   * Every call the order and payment services received (ListCalls), as their count per
   * `x-idempotency-key` ('' for calls without one) and method, e.g. `r1:createOrder` → {CreateOrder: 2}.
   */
  async upstreamCalls(): Promise<Map<string, Record<string, number>>> {
    const byKey = new Map<string, Record<string, number>>();
    for (const client of [this.orders, this.payments]) {
      const { calls } = (await call<{ calls: { method: string; idempotency_key: string; count: number }[] }>(client, 'ListCalls', {})).response;
      for (const c of calls) {
        const methods = byKey.get(c.idempotency_key) ?? byKey.set(c.idempotency_key, {}).get(c.idempotency_key)!;
        methods[c.method] = (methods[c.method] ?? 0) + c.count;
      }
    }
    return byKey;
  }

  async stop(): Promise<void> {
    for (const c of [this.booking, this.sagas, this.orders, this.payments, this.factory, this.accounts, this.gateway, this.warehouse, this.drivers]) c?.close();
    for (const p of this.procs) p.kill('SIGTERM');
    await Promise.all(this.procs.map((p) => p.exited));
  }
}
