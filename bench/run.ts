/**
 * Load benchmark: starts order + payment + the orchestrator (Kafka transport, Postgres store), then
 * drives each facade in turn and prints completed / failures / sagas/s / latency / peak RSS.
 * `make bench BENCH_ARGS="--duration 10"`; options in ./options.ts.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { bookingClients, orchestratorClient } from './clients';
import { runAsync, runSync, runThrottled, type LoadResult } from './load';
import { parseOptions, type BenchOptions, type Facade } from './options';
import { formatSummary } from './profile';
import { cpuSeconds, cpuSecondsOfCommand, hostCpuTicks, RssSampler, rssMb } from './procfs';
import { BenchStack, POSTGRES_ADMIN_DSN } from './stack';
import { runTransfer } from './transfer';
import { resultLine, summaryTable, type FacadeResult } from './stats';

interface Clients { booking: grpc.Client[]; sagas: grpc.Client; orchestrator: grpc.Client[] }

function runFacade(facade: Facade, opts: BenchOptions, clients: Clients, tag: string): Promise<LoadResult> {
  switch (facade) {
    case 'sync': return runSync(clients.booking, `${tag}-s`, opts.concurrency, opts.duration);
    case 'async': return runAsync(clients.booking, clients.sagas, `${tag}-a`, opts.concurrency, opts.duration, opts.asyncTimeout);
    case 'throttled': return runThrottled(clients.booking, `${tag}-t`, opts.rate, opts.throttledDuration, opts.throttledDeadline);
    case 'transfer': return runTransfer(clients.orchestrator, `${tag}-x`, opts.concurrency, opts.duration, opts.asyncTimeout);
  }
}

function describe(facade: Facade, opts: BenchOptions): string {
  return facade === 'throttled'
    ? `open loop ${opts.rate}/s for ${opts.throttledDuration} s, deadline ${opts.throttledDeadline} s, throttle.maxConcurrent ${opts.throttleConcurrency ?? 'from app.yaml'}`
    : facade === 'transfer'
      ? `closed loop, ${opts.concurrency} clients for ${opts.duration} s: StartSaga, GetSaga every 10 ms until the webhook waits, SendEvent CONFIRMED`
      : `closed loop, ${opts.concurrency} workers for ${opts.duration} s`;
}

/**
 * Starts measuring; the returned function gives the average CPU use since then: the orchestrator's
 * and this process's in % of one core, the host's in % of all its cores.
 */
async function cpuMeter(orchestratorPids: number[], upstreamPids: number[]): Promise<() => Promise<FacadeResult['cpu']>> {
  const sum = async (pids: number[]) => (await Promise.all(pids.map(cpuSeconds))).reduce<number>((a, b) => a + (b ?? 0), 0);
  const upstreams = () => sum(upstreamPids);
  const t0 = performance.now();
  const och0 = await sum(orchestratorPids);
  const [up0, pg0, kafka0] = [await upstreams(), await cpuSecondsOfCommand('postgres'), await cpuSecondsOfCommand('java')];
  const self0 = process.cpuUsage();
  const host0 = await hostCpuTicks();
  return async () => {
    const wall = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    const host = await hostCpuTicks();
    const pct = (seconds: number) => (100 * seconds) / wall;
    return {
      orchestrator: pct((await sum(orchestratorPids)) - och0),
      bench: pct((self.user + self.system) / 1e6),
      upstreams: pct((await upstreams()) - up0),
      postgres: pct((await cpuSecondsOfCommand('postgres')) - pg0),
      kafka: pct((await cpuSecondsOfCommand('java')) - kafka0),
      host: (100 * (host.busy - host0.busy)) / (host.total - host0.total),
    };
  };
}

function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const cpuProfDir = opts.cpuProfDir ? path.resolve(opts.cpuProfDir) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  console.log(`bench: facades ${opts.facades.join(',')}, concurrency ${opts.concurrency}, duration ${opts.duration} s, ` +
    `rate ${opts.rate}/s for ${opts.throttledDuration} s, ${opts.instances} instance(s) x ${opts.clients} channels${cpuProfDir ? `, cpu profile in ${cpuProfDir}` : ''}; ` +
    `postgres ${POSTGRES_ADMIN_DSN}`);

  const stack = new BenchStack();
  const results: FacadeResult[] = [];
  let clients: Clients | undefined;
  let samplers: RssSampler[] = [];
  const interrupt = () => {
    console.log('interrupted; stopping');
    // fire-and-forget from a signal handler: the process exits once the stack has stopped, or failed to
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await stack.start({ orchestratorNodeArgs: [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [])], throttleConcurrency: opts.throttleConcurrency, instances: opts.instances });
    for (const [i, o] of stack.orchestrators.entries()) {
      console.log(`stack up: orchestrator ${stack.addresses[i]} (pid ${o.pid}, RSS ${(await rssMb(o.pid))?.toFixed(0)} MB), topics ${stack.topicPrefix}*`);
    }
    // Each worker keeps to one channel; the channels alternate between the instances.
    const perInstance = stack.addresses.map((a) => bookingClients(a, opts.clients));
    const booking = perInstance[0].flatMap((_, c) => perInstance.map((clientsOf) => clientsOf[c]));
    const orchestrator = Array.from({ length: opts.clients }, (_, c) => orchestratorClient(stack.addresses[c % stack.addresses.length]));
    clients = { booking, sagas: orchestratorClient(stack.addresses[0]), orchestrator };
    samplers = stack.orchestrators.map((o) => new RssSampler(o.pid));
    samplers.forEach((s) => s.start());
    for (const facade of opts.facades) {
      if (opts.warmup > 0) {
        const warm = await runFacade(facade, { ...opts, duration: opts.warmup, throttledDuration: opts.warmup }, clients, `${stack.runId}-warm`);
        console.log(`[${facade}] warm-up ${opts.warmup} s, not counted: ${warm.completed} completed, ${warm.failures.total} failed`);
      }
      console.log(`[${facade}] ${describe(facade, opts)} ...`);
      await Promise.all(samplers.map((s) => s.takePeak()));
      const cpu = await cpuMeter(stack.orchestrators.map((o) => o.pid), stack.upstreamPids);
      const load = await runFacade(facade, opts, clients, stack.runId);
      const result: FacadeResult = {
        facade, ...load, sagasPerSec: load.seconds > 0 ? load.completed / load.seconds : 0, peakRssMb: Math.max(...await Promise.all(samplers.map((s) => s.takePeak()))), cpu: await cpu(),
      };
      results.push(result);
      console.log(resultLine(result));
    }
  } finally {
    samplers.forEach((s) => s.stop());
    for (const c of [...(clients?.booking ?? []), ...(clients?.orchestrator ?? []), clients?.sagas]) c?.close();
    await stack.stop();
  }
  console.log(`\nsummary (Kafka transport, Postgres store; sagas/s = completed / first start..last completion; ${cpus().length} CPUs, cpu% of one core)`);
  console.log(summaryTable(results));
  const profile = cpuProfDir ? newestProfile(cpuProfDir) : undefined;
  if (profile) console.log(`\n${formatSummary(profile)}`);
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
