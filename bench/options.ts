/** Command-line options of the benchmark (`node dist/bench/run.js --concurrency 64 ...`). */
export type Facade = 'sync' | 'async' | 'throttled' | 'transfer';

export const FACADES: readonly Facade[] = ['sync', 'async', 'throttled', 'transfer'];
/** The default set: transfer (event-driven, StartSaga + SendEvent) only when asked for. */
export const DEFAULT_FACADES: readonly Facade[] = ['sync', 'async', 'throttled'];

export interface BenchOptions {
  /** Closed-loop workers for the sync, async and transfer facades. */
  concurrency: number;
  /** Seconds of load for the sync, async and transfer facades. */
  duration: number;
  /** Seconds of the same load before each facade's measured run, not counted (JIT, connections, caches). */
  warmup: number;
  /** Requests per second of the open loop against the throttled facade. */
  rate: number;
  /** Seconds of load for the throttled facade. */
  throttledDuration: number;
  facades: Facade[];
  /** gRPC channels (each its own HTTP/2 connection) per orchestrator instance the load is spread over. */
  clients: number;
  /** Orchestrator instances (one consumer group, one database); the load alternates between them. */
  instances: number;
  /** Seconds to wait, after the async or transfer load, for every started saga to end. */
  asyncTimeout: number;
  /** Deadline of one throttled call, in seconds. */
  throttledDeadline: number;
  /** The orchestrator's throttle.maxConcurrent (throttled sagas running at once); app.yaml's when absent. */
  throttleConcurrency?: number;
  /** When set, the orchestrator runs with `--cpu-prof --cpu-prof-dir=<dir>`. */
  cpuProfDir?: string;
}

const DEFAULTS: BenchOptions = {
  concurrency: 64,
  duration: 20,
  warmup: 5,
  rate: 500,
  throttledDuration: 30,
  facades: [...DEFAULT_FACADES],
  clients: 4,
  instances: 1,
  asyncTimeout: 120,
  throttledDeadline: 10,
};

const USAGE = `usage: node dist/bench/run.js [--concurrency N] [--duration S] [--warmup S] [--rate N] [--throttled-duration S]
       [--facades sync,async,throttled,transfer] [--clients N] [--async-timeout S] [--throttled-deadline S]
       [--throttle-concurrency N]  (the orchestrator's throttle.maxConcurrent)  [--instances N]
       [--cpu-prof DIR]        (or BENCH_CPU_PROF=DIR)`;

function positive(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number, got ${value ?? 'nothing'}\n${USAGE}`);
  return n;
}

function facadeList(value: string | undefined): Facade[] {
  const names = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !FACADES.includes(n as Facade));
  if (names.length === 0 || unknown.length > 0) throw new Error(`--facades takes a list of ${FACADES.join(', ')}; got ${value ?? 'nothing'}\n${USAGE}`);
  return names as Facade[];
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const options: BenchOptions = { ...DEFAULTS, facades: [...DEFAULTS.facades], cpuProfDir: env.BENCH_CPU_PROF || undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--concurrency': options.concurrency = Math.floor(positive(flag, value())); break;
      case '--duration': options.duration = positive(flag, value()); break;
      case '--warmup': options.warmup = Number(value()); if (!(options.warmup >= 0)) throw new Error(`--warmup needs seconds >= 0\n${USAGE}`); break;
      case '--rate': options.rate = positive(flag, value()); break;
      case '--throttled-duration': options.throttledDuration = positive(flag, value()); break;
      case '--facades': options.facades = facadeList(value()); break;
      case '--clients': options.clients = Math.floor(positive(flag, value())); break;
      case '--instances': options.instances = Math.floor(positive(flag, value())); break;
      case '--async-timeout': options.asyncTimeout = positive(flag, value()); break;
      case '--throttled-deadline': options.throttledDeadline = positive(flag, value()); break;
      case '--throttle-concurrency': options.throttleConcurrency = Math.floor(positive(flag, value())); break;
      case '--cpu-prof': {
        const dir = value();
        if (!dir) throw new Error(`--cpu-prof needs a directory\n${USAGE}`);
        options.cpuProfDir = dir;
        break;
      }
      case '-h': case '--help': throw new Error(USAGE);
      default: throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  return options;
}
