import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { DEFAULT_ADDR } from '../../src/cli/program';
import type { Saga } from '../../src/cli/types';
import { configSchema } from '../../src/config/schema';
import { authority, SHIPPED, SHIPPED_CONSOLE } from '../helpers/shipped';
import { freePort, ROOT } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);
const BUF = path.join(ROOT, 'node_modules', '.bin', 'buf');

type Ports = Record<'orchestrator' | 'order' | 'payment' | 'factory' | 'accounts' | 'gateway' | 'warehouse' | 'drivers' | 'http', number>;

/** The demo services run-local.sh starts before the orchestrator. */
const DEMO_SERVICES = ['order', 'payment', 'factory', 'accounts', 'gateway', 'warehouse', 'drivers'] as const;

/** scripts/run-local.sh (what `make run` runs) on free ports, its output kept as lines. */
class RunLocal {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private listeners: ((line: string) => void)[] = [];

  /** `shipped`: the ports app.yaml and the script give, as `make run` uses them; else `ports` through OCH_*. */
  constructor(readonly ports: Ports, shipped = false) {
    // None of this shell's OCH_* settings: the script and app.yaml decide, as for a user.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OCH_')));
    this.child = spawn(path.join(ROOT, 'scripts', 'run-local.sh'), ['memory'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: shipped ? { ...env, OCH_LOG_LEVEL: 'info' } : {
        ...env,
        OCH_PATH: ROOT,
        OCH_LOG_LEVEL: 'info',
        OCH_GRPC_PORT: String(ports.orchestrator),
        OCH_HTTP_PORT: String(ports.http),
        OCH_ORDER_ADDR: `127.0.0.1:${ports.order}`,
        OCH_PAYMENT_ADDR: `127.0.0.1:${ports.payment}`,
        OCH_FACTORY_ADDR: `127.0.0.1:${ports.factory}`,
        OCH_ACCOUNTS_ADDR: `127.0.0.1:${ports.accounts}`,
        OCH_GATEWAY_ADDR: `127.0.0.1:${ports.gateway}`,
        OCH_WAREHOUSE_ADDR: `127.0.0.1:${ports.warehouse}`,
        OCH_DRIVERS_ADDR: `127.0.0.1:${ports.drivers}`,
      },
    });
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const line of parts.filter(Boolean)) {
        this.lines.push(line);
        for (const listener of this.listeners) listener(line);
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Calls fn on each line from now on, synchronously as it arrives. */
  onLine(fn: (line: string) => void): void {
    this.listeners.push(fn);
  }

  /** Index of the first "gRPC server listening" line of `service`, -1 if none. */
  listening(service: string): number {
    return this.lines.findIndex((l) => l.includes('"gRPC server listening"') && l.includes(`"service":"${service}"`));
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }
}

/** True when nothing listens on 127.0.0.1:port (we can bind it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The ports `make run` uses: the orchestrator's from app.yaml, the demo services' as app.yaml's upstreams (the script's defaults). */
function shippedPorts(): Ports {
  const port = (address: string) => Number(address.split(':').pop());
  const u = SHIPPED.upstreams;
  return {
    orchestrator: SHIPPED.grpc.port, http: SHIPPED.http.port, order: port(u.order), payment: port(u.payment), factory: port(u.factory),
    accounts: port(u.accounts), gateway: port(u.gateway), warehouse: port(u.warehouse), drivers: port(u.drivers),
  };
}

interface Result { code: number | null; stdout: string; stderr: string }

/** `och ARGS` as a user types it: no --addr, no OCH_ADDR. */
function och(...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args], { cwd: ROOT, env: { ...process.env, OCH_ADDR: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ochSaga(id: string): Promise<Saga> {
  const r = await och('--json', 'sagas', 'get', id);
  expect(r, `och --json sagas get ${id}`).to.include({ code: 0, stderr: '' });
  return JSON.parse(r.stdout) as Saga;
}

async function freePorts(): Promise<Ports> {
  return { orchestrator: await freePort(), order: await freePort(), payment: await freePort(), factory: await freePort(), accounts: await freePort(), gateway: await freePort(), warehouse: await freePort(), drivers: await freePort(), http: await freePort() };
}

describe('make run (scripts/run-local.sh)', function () {
  this.timeout(240_000);
  let script: RunLocal | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && script) console.log(script.lines.join('\n'));
    script?.stop();
    await script?.exited;
    script = undefined;
  });

  it('on the shipped ports, as `make run`: the README call sent the moment it listens succeeds; och without --addr starts a saga of each example; the console loads and cancels one; SIGTERM stops them all', async () => {
    const ports = shippedPorts();
    for (const [name, port] of Object.entries(ports)) expect(await portFree(port), `${name} port ${port} free (another make run on this machine?)`).to.equal(true);
    // och's default address is where the server listens by default and as shipped.
    const defaults = configSchema.parse({});
    expect(DEFAULT_ADDR).to.equal(`${defaults.grpc.host}:${defaults.grpc.port}`).and.to.equal(authority(SHIPPED.grpc.host, SHIPPED.grpc.port));
    script = new RunLocal(ports, true);
    const s = script;
    // Sent from the line handler itself, as a person would paste the README's command.
    const answer = new Promise<{ stdout: string }>((resolve, reject) => {
      s.onLine((line) => {
        if (line.includes('"gRPC server listening"') && line.includes('"service":"orchestrator"')) {
          run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-H', 'x-request-id: r1', '-d', '{"ProductID":"1"}',
            `http://127.0.0.1:${ports.orchestrator}/pb.BookingService/HandleSyncBooking`]).then(resolve, reject);
        }
      });
    });
    const died = s.exited.then((code) => { throw new Error(`run-local.sh exited ${code}:\n${s.lines.join('\n')}`); });
    const { stdout } = await Promise.race([answer, died]);
    expect(JSON.parse(stdout)).to.deep.equal({ RequestID: 'r1', OrderID: '1', PaymentID: '1' });
    const orchestrator = s.listening('orchestrator');
    for (const service of DEMO_SERVICES) expect(s.listening(service), `${service} listening before the orchestrator`).to.be.within(0, orchestrator - 1);
    // The address it prints for the console is the shipped one.
    expect(s.lines.find((l) => l.includes('"HTTP server listening"'))).to.contain(`"console":"${SHIPPED_CONSOLE}/"`);

    // One saga of each other example, started with och as a user would: each reaches its demo service.
    const inputs = {
      'rl-hammer': ['Hammer', { headType: 'claw', handleSize: 'short', failAt: '', delayMs: 10 }],
      'rl-transfer': ['Transfer', { from: 'alice', to: 'bob', amount: 100, webhookTimeoutMs: 600_000 }],
      'rl-delivery': ['OrderDelivery', { items: ['sku-1'] }],
      'rl-ride': ['Bargain', { clientId: 'c1', from: 'Old Town', to: 'Airport', suggestedPrice: 300 }],
    } as const;
    for (const [id, [facade, input]] of Object.entries(inputs)) {
      expect(await och('start', facade, '--input', JSON.stringify(input), '--request-id', id), `och start ${facade}`).to.deep.equal({ code: 0, stdout: `${id}\n`, stderr: '' });
    }
    await waitFor(async () => (await ochSaga('rl-hammer')).status === 'COMPLETED', 60_000, 'the hammer to be made');
    for (const id of ['rl-transfer', 'rl-delivery', 'rl-ride']) await waitFor(async () => (await ochSaga(id)).waiting.length > 0, 60_000, `${id} to wait for an event`);

    // The console where make run serves it: the page, then one action from that very origin.
    const page = await fetch(`${SHIPPED_CONSOLE}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('<script type="module" src="/console/app.js">');
    const cancel = await fetch(`${SHIPPED_CONSOLE}/api/sagas/rl-transfer/cancel`, { method: 'POST', headers: { 'content-type': 'application/json', origin: SHIPPED_CONSOLE }, body: '{}' });
    expect(cancel.status, await cancel.clone().text()).to.equal(200);
    expect(((await cancel.json()) as { saga: { errorCode: string } }).saga.errorCode).to.equal('CANCELLED');
    await waitFor(async () => (await ochSaga('rl-transfer')).status === 'COMPENSATED', 60_000, 'the cancelled transfer to be compensated');

    // What each demo service received, through server reflection as the README calls it: a call known for each.
    const services = { order: 'order.v1.OrderService', payment: 'payment.v1.PaymentService', factory: 'factory.v1.FactoryService', accounts: 'accounts.v1.AccountsService',
      gateway: 'gateway.v1.PaymentGatewayService', warehouse: 'warehouse.v1.WarehouseService', drivers: 'drivers.v1.DriverService' } as const;
    const known = { order: ['CreateOrder'], payment: ['CreatePayment'], factory: ['MakeHead', 'MakeHandle', 'MakeHammer'], accounts: ['Debit', 'Refund'],
      gateway: ['Charge'], warehouse: ['Reserve'], drivers: ['Dispatch'] } as const;
    for (const service of DEMO_SERVICES) {
      const listed = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{}', `http://127.0.0.1:${ports[service]}/${services[service]}/ListCalls`]);
      // proto3 JSON leaves an empty list out: no `calls` is a service that counted nothing, a failure here.
      const { calls } = JSON.parse(listed.stdout) as { calls?: { method: string; idempotencyKey: string; count: number }[] };
      expect(calls, `${service} ListCalls: ${listed.stdout}`).to.be.an('array');
      expect(calls!.map((c) => c.method), `${service} ListCalls`).to.include.members([...known[service]]);
    }

    s.stop();
    expect(await s.exited).to.equal(0);
    for (const [name, port] of Object.entries(ports)) expect(await portFree(port), `${name} port ${port} released`).to.equal(true);
  });

  it('does not start the orchestrator when a demo service cannot start, and stops the others', async () => {
    const ports = await freePorts();
    // The payment port is taken: the payment service fails to bind it and exits. (Connections,
    // the script's health checks, are dropped at once: close() waits for every open one.)
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(ports.payment, '127.0.0.1', resolve));
    try {
      script = new RunLocal(ports);
      const s = script;
      const started = new Promise<string>((resolve) => s.onLine(() => { if (s.listening('orchestrator') >= 0) resolve('the orchestrator started'); }));
      expect(await Promise.race([s.exited, started]), s.lines.join('\n')).to.equal(1);
      expect(script.lines.join('\n')).to.contain('a demo service exited before serving');
      expect(script.listening('orchestrator')).to.equal(-1);
      for (const service of DEMO_SERVICES.filter((d) => d !== 'payment')) expect(await portFree(ports[service]), `${service} port released`).to.equal(true);
      expect(await portFree(ports.orchestrator), 'orchestrator port never taken').to.equal(true);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
