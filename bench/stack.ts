import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { ALL_TOPICS } from '../topics/topics';

/** Repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(__dirname, '..', '..');

const SOCKET_DIR = '/var/run/postgresql';
/**
 * The Postgres the bench creates its database on. A local one is reached over its Unix socket, as
 * psql and pgbench do by default: loopback TCP costs both ends CPU that the bench would measure.
 */
export const POSTGRES_ADMIN_DSN = process.env.POSTGRES_ADMIN_DSN
  ?? (existsSync(`${SOCKET_DIR}/.s.PGSQL.5432`) ? `postgres://postgres@${encodeURIComponent(SOCKET_DIR)}/postgres` : 'postgres://postgres@127.0.0.1:5432/postgres');
const KAFKA_BROKERS = (process.env.OCH_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A spawned node process; keeps the tail of its output for error messages. */
export class Proc {
  readonly exited: Promise<number | null>;
  outputLines = 0;
  /** Log lines by `<level> <message>` (the processes log JSON lines). */
  readonly logCounts = new Map<string, number>();
  private readonly tail: string[] = [];
  private readonly child: ChildProcess;
  /** stop() was called: the exit is expected. */
  private stopping = false;

  constructor(readonly name: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []) {
    this.child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer) => {
      const lines = chunk.toString().split('\n').filter(Boolean);
      this.outputLines += lines.length;
      for (const line of lines) this.count(line);
      this.tail.push(...lines);
      this.tail.splice(0, Math.max(0, this.tail.length - 30));
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      // Said at once, with the time: a process gone mid-run (a signal from outside the bench) otherwise shows only as refused calls.
      if (!this.stopping) console.log(`${new Date().toISOString()} ${name} (pid ${this.child.pid}) exited by itself: code ${code}, signal ${signal}`);
      resolve(code);
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The most frequent log messages, e.g. `warn call failed x4000`. */
  topMessages(n = 8): string[] {
    return [...this.logCounts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([m, c]) => `${m} x${c}`);
  }

  private count(line: string): void {
    let key = 'text';
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string };
      key = `${entry.level ?? '?'} ${entry.message ?? '?'}`;
    } catch {
      // not a JSON log line
    }
    this.logCounts.set(key, (this.logCounts.get(key) ?? 0) + 1);
  }

  lastLines(): string {
    return this.tail.join('\n');
  }

  /** kill -9: the process gets no chance to drain or leave its consumer groups (a crash, an OOM kill); resolves once it has exited. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.stopping = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

const healthProto = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
  grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient } } };
};
type HealthClient = grpc.Client & {
  Check(request: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
};

function healthStatus(address: string): Promise<string> {
  const client = new healthProto.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.Check({ service: '' }, { deadline: Date.now() + 1_000 }, (err: grpc.ServiceError | null, res?: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls grpc.health.v1.Health/Check every `pollMs` until SERVING; fails if the process exits first or on timeout. */
export async function waitServing(address: string, proc: Proc, timeoutMs = 60_000, pollMs = 100): Promise<void> {
  let exitCode: number | null | undefined;
  // fire-and-forget: `exited` never rejects; the loop below polls exitCode
  void proc.exited.then((code) => { exitCode = code; });
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${proc.name} exited with ${exitCode} before serving:\n${proc.lastLines()}`);
    if ((await healthStatus(address).catch(() => '')) === 'SERVING') return;
    if (Date.now() > end) throw new Error(`${proc.name} not SERVING on ${address} after ${timeoutMs} ms:\n${proc.lastLines()}`);
    await sleep(pollMs);
  }
}

async function postgresAdmin(sql: string): Promise<void> {
  const client = new Client({ connectionString: POSTGRES_ADMIN_DSN });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A new, empty database on the shared server, for one benchmark run. */
export async function createDatabase(): Promise<{ name: string; dsn: string; drop: () => Promise<void> }> {
  const name = `saga_bench_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  await postgresAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_ADMIN_DSN);
  url.pathname = `/${name}`;
  return { name, dsn: url.toString(), drop: () => postgresAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Deletes the topics the orchestrator created under `prefix` (those that exist). */
export async function deleteTopics(prefix: string): Promise<number> {
  const admin = new Kafka({ clientId: 'bench-cleanup', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const topics = ALL_TOPICS.map((t) => `${prefix}${t.name}`).filter((t) => existing.has(t));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    return topics.length;
  } finally {
    await admin.disconnect();
  }
}

export interface StackOptions {
  /** Extra node arguments for the orchestrator (e.g. --cpu-prof). */
  orchestratorNodeArgs?: string[];
  /** throttle.maxConcurrent of the orchestrator. */
  throttleConcurrency?: number;
  /** Orchestrator instances sharing the database, topics and consumer groups (default 1). */
  instances?: number;
  /** More environment for the orchestrators (e.g. OCH_PATH to another app.yaml, OCH_PARK_EXAMPLE). */
  orchestratorEnv?: NodeJS.ProcessEnv;
}

interface OrchestratorSpec { name: string; address: string; env: NodeJS.ProcessEnv; nodeArgs: string[] }

/**
 * order + payment (booking) and accounts + gateway (transfer) demo services and the orchestrator instances (Kafka transport, Postgres store on
 * a fresh database, unique topic prefix and consumer group), on free ports. Config: the
 * repository's app.yaml with environment overrides.
 */
export class BenchStack {
  readonly runId = `bench-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
  readonly topicPrefix = `${this.runId}.`;
  readonly addresses: string[] = [];
  /** Each orchestrator's HTTP server (/metrics, /readyz), host:port. */
  readonly httpAddresses: string[] = [];
  /** The transfer example's accounts service (ListCalls: the credits each saga caused). */
  accountsAddress = '';
  readonly orchestrators: Proc[] = [];
  private procs: Proc[] = [];
  /** How each orchestrator was spawned, to start it again the same way (startOrchestrator). */
  private readonly specs: OrchestratorSpec[] = [];
  private stopping: Promise<void> | undefined;

  /** The demo services (order, payment, accounts, gateway). */
  get upstreamPids(): number[] {
    return this.procs.filter((p) => !this.orchestrators.includes(p)).map((p) => p.pid);
  }
  private database: Awaited<ReturnType<typeof createDatabase>> | undefined;

  async start(opts: StackOptions = {}): Promise<void> {
    this.database = await createDatabase();
    const [orderPort, paymentPort, accountsPort, gatewayPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const service = (example: string, kind: string, p: number) =>
      this.spawn(kind, [`dist/src/examples/${example}/services/main.js`, kind, `127.0.0.1:${p}`], { OCH_LOG_LEVEL: 'warn' });
    const order = service('booking', 'order', orderPort);
    const payment = service('booking', 'payment', paymentPort);
    // The transfer example's upstreams (bench --facades transfer, bench/park.ts).
    const accounts = service('transfer', 'accounts', accountsPort);
    this.accountsAddress = `127.0.0.1:${accountsPort}`;
    const gateway = service('transfer', 'gateway', gatewayPort);
    await Promise.all([
      waitServing(`127.0.0.1:${orderPort}`, order), waitServing(`127.0.0.1:${paymentPort}`, payment),
      waitServing(`127.0.0.1:${accountsPort}`, accounts), waitServing(`127.0.0.1:${gatewayPort}`, gateway),
    ]);
    for (let i = 0; i < (opts.instances ?? 1); i++) {
      const [port, httpPort] = [await freePort(), await freePort()];
      const spec: OrchestratorSpec = {
        name: `orchestrator-${i}`,
        address: `127.0.0.1:${port}`,
        nodeArgs: opts.orchestratorNodeArgs ?? [],
        env: {
          // BENCH_APP_DIR: a directory with another app.yaml (e.g. a longer saga.asyncDeadlineMs for a large park test).
          OCH_PATH: process.env.BENCH_APP_DIR ?? ROOT,
          POD_ID: `bench-${i}`,
          OCH_TRANSPORT: 'kafka',
          OCH_STORE: 'postgres',
          OCH_POSTGRES_DSN: this.database.dsn,
          OCH_KAFKA_BROKERS: KAFKA_BROKERS.join(','),
          OCH_TOPIC_PREFIX: this.topicPrefix,
          OCH_KAFKA_GROUP_ID: this.runId,
          OCH_GRPC_PORT: String(port),
          OCH_HTTP_PORT: String(httpPort),
          OCH_ORDER_ADDR: `127.0.0.1:${orderPort}`,
          OCH_PAYMENT_ADDR: `127.0.0.1:${paymentPort}`,
          OCH_ACCOUNTS_ADDR: `127.0.0.1:${accountsPort}`,
          OCH_GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
          OCH_LOG_LEVEL: 'warn',
          ...(opts.throttleConcurrency ? { OCH_THROTTLE_MAX_CONCURRENT: String(opts.throttleConcurrency) } : {}),
          ...opts.orchestratorEnv,
        },
      };
      const orchestrator = this.spawn(spec.name, ['dist/src/main.js'], spec.env, spec.nodeArgs);
      await waitServing(spec.address, orchestrator, 90_000);
      this.specs.push(spec);
      this.addresses.push(spec.address);
      this.httpAddresses.push(`127.0.0.1:${httpPort}`);
      this.orchestrators.push(orchestrator);
    }
  }

  /** The DSN of this run's database (for figures the API does not give, e.g. lapsed leases). */
  get databaseDsn(): string {
    if (!this.database) throw new Error('the stack is not started');
    return this.database.dsn;
  }

  /**
   * Stops orchestrator `i` as an operator would: SIGTERM, so that it drains and hands its leases
   * back (SIGKILL only if it has not exited after 30 s). Start it again with startOrchestrator(i).
   */
  async stopOrchestrator(i = 0): Promise<{ stopMs: number; exitCode: number | null }> {
    const old = this.orchestrators[i];
    const t0 = performance.now();
    const exitCode = await old.stop();
    const stopMs = performance.now() - t0;
    // Its log summary now: stop() reports only the processes the stack still holds.
    console.log(`  ${old.name} (pid ${old.pid}) exited with ${exitCode} ${stopMs.toFixed(0)} ms after SIGTERM; log lines ${old.outputLines}${old.outputLines > 0 ? `: ${old.topMessages().join('; ')}` : ''}`);
    return { stopMs, exitCode };
  }

  /** kill -9 of orchestrator `i` (a crash: nothing drained, no lease handed back). */
  async killOrchestrator(i: number): Promise<void> {
    await this.orchestrators[i].kill();
  }

  /**
   * Starts orchestrator `i` again after stopOrchestrator(i) or killOrchestrator(i), with the same environment, pod id and
   * port, as an operator restarting it would. `serveMs` runs from the spawn to the first SERVING
   * health answer (polled every 100 ms).
   */
  async startOrchestrator(i = 0, pollMs = 100): Promise<{ serveMs: number; pid: number }> {
    const old = this.orchestrators[i];
    if (old.running) throw new Error(`${old.name} is still running: stopOrchestrator(${i}) first`);
    const spec = this.specs[i];
    const t0 = performance.now();
    const fresh = this.spawn(spec.name, ['dist/src/main.js'], spec.env, spec.nodeArgs);
    this.procs = this.procs.filter((p) => p !== old);
    this.orchestrators[i] = fresh;
    await waitServing(spec.address, fresh, 300_000, pollMs);
    return { serveMs: performance.now() - t0, pid: fresh.pid };
  }

  /**
   * Stops the orchestrator first (it drains), then the upstreams; drops the database and the topics.
   * Once: an interrupted run calls it from the signal handler and again as its main() unwinds.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    const codes: string[] = [];
    for (const p of this.orchestrators) codes.push(`${p.name}=${await p.stop()}`);
    for (const p of this.procs.filter((q) => !this.orchestrators.includes(q))) codes.push(`${p.name}=${await p.stop()}`);
    console.log(`stopped: exit codes ${codes.join(' ')}; log lines (warn and above) ${this.procs.map((p) => `${p.name}=${p.outputLines}`).join(' ')}`);
    for (const p of this.procs.filter((q) => q.outputLines > 0)) console.log(`  ${p.name}: ${p.topMessages().join('; ')}`);
    await this.database?.drop().then(() => console.log(`dropped database ${this.database!.name}`), (err) => console.error(`drop database: ${err}`));
    await deleteTopics(this.topicPrefix).then((n) => console.log(`deleted ${n} topics ${this.topicPrefix}*`), (err) => console.error(`delete topics: ${err}`));
  }

  private spawn(name: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Proc {
    const proc = new Proc(name, args, env, nodeArgs);
    this.procs.push(proc);
    return proc;
  }
}
