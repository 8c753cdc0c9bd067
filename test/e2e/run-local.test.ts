import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { freePort, ROOT } from '../helpers/stack';

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

  constructor(readonly ports: Ports) {
    this.child = spawn(path.join(ROOT, 'scripts', 'run-local.sh'), ['memory'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
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

async function freePorts(): Promise<Ports> {
  return { orchestrator: await freePort(), order: await freePort(), payment: await freePort(), factory: await freePort(), accounts: await freePort(), gateway: await freePort(), warehouse: await freePort(), drivers: await freePort(), http: await freePort() };
}

describe('make run (scripts/run-local.sh)', function () {
  this.timeout(60_000);
  let script: RunLocal | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && script) console.log(script.lines.join('\n'));
    script?.stop();
    await script?.exited;
    script = undefined;
  });

  it('starts the orchestrator once the demo services serve: the README call sent the moment it listens succeeds; SIGTERM stops them all', async () => {
    const ports = await freePorts();
    script = new RunLocal(ports);
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
    // The README's calls to the demo services go through server reflection too, types imported from demo_calls.proto included.
    const services = { order: 'order.v1.OrderService', payment: 'payment.v1.PaymentService', factory: 'factory.v1.FactoryService', accounts: 'accounts.v1.AccountsService',
      gateway: 'gateway.v1.PaymentGatewayService', warehouse: 'warehouse.v1.WarehouseService', drivers: 'drivers.v1.DriverService' } as const;
    for (const service of DEMO_SERVICES) {
      const calls = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{}', `http://127.0.0.1:${ports[service]}/${services[service]}/ListCalls`]);
      const counted = (JSON.parse(calls.stdout || '{}') as { calls?: { method: string; idempotencyKey: string }[] }).calls ?? [];
      if (service === 'order') expect(counted.map((c) => c.method), 'the order service counted the booking').to.include('CreateOrder');
      else expect(counted, `${service} ListCalls`).to.be.an('array');
    }
    const orchestrator = s.listening('orchestrator');
    for (const service of DEMO_SERVICES) expect(s.listening(service), `${service} listening before the orchestrator`).to.be.within(0, orchestrator - 1);

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
