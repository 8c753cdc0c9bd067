/** Latency samples, failure counts and the lines the benchmark prints. */

/** Nearest-rank percentile of sorted values (p in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface LatencySummary { count: number; p50: number; p99: number; max: number }

/** Latencies in milliseconds. */
export class Latencies {
  private readonly values: number[] = [];

  add(ms: number): void {
    this.values.push(ms);
  }

  get count(): number {
    return this.values.length;
  }

  summary(): LatencySummary {
    const sorted = [...this.values].sort((a, b) => a - b);
    return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
  }
}

/** Failures by gRPC status name (or another label such as TIMEOUT or COMPENSATED). */
export class Failures {
  private readonly byCode = new Map<string, number>();

  add(code: string): void {
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  get total(): number {
    let n = 0;
    for (const v of this.byCode.values()) n += v;
    return n;
  }

  toString(): string {
    if (this.byCode.size === 0) return '0';
    const parts = [...this.byCode.entries()].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code}=${n}`);
    return `${this.total} (${parts.join(' ')})`;
  }
}

export interface FacadeResult {
  facade: string;
  completed: number;
  failures: Failures;
  /** Sagas completed per second over `seconds`. */
  sagasPerSec: number;
  seconds: number;
  latency: LatencySummary;
  peakRssMb: number;
  /** Average CPU use during the phase, in % of one core: the orchestrator and this load generator. */
  cpu: { orchestrator: number; bench: number; upstreams: number; postgres: number; kafka: number; host: number };
  /** Extra facts worth a mention (requests started, sagas still running, ...). */
  note?: string;
}

const ms = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1));

export function resultLine(r: FacadeResult): string {
  return `[${r.facade}] completed=${r.completed} failures=${r.failures.toString()} sagas/s=${r.sagasPerSec.toFixed(1)} ` +
    `(over ${r.seconds.toFixed(1)} s) latency ms p50=${ms(r.latency.p50)} p99=${ms(r.latency.p99)} max=${ms(r.latency.max)} ` +
    `peakRSS=${r.peakRssMb.toFixed(0)} MB cpu% orchestrator=${r.cpu.orchestrator.toFixed(0)} bench=${r.cpu.bench.toFixed(0)} upstreams=${r.cpu.upstreams.toFixed(0)} postgres=${r.cpu.postgres.toFixed(0)} kafka=${r.cpu.kafka.toFixed(0)} host=${r.cpu.host.toFixed(0)}%${r.note ? ` | ${r.note}` : ''}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function summaryTable(results: readonly FacadeResult[]): string {
  const rows = results.map((r) => [
    r.facade, String(r.completed), String(r.failures.total), r.sagasPerSec.toFixed(1),
    ms(r.latency.p50), ms(r.latency.p99), ms(r.latency.max), r.peakRssMb.toFixed(0),
    r.cpu.orchestrator.toFixed(0), r.cpu.bench.toFixed(0), r.cpu.upstreams.toFixed(0), r.cpu.postgres.toFixed(0), r.cpu.kafka.toFixed(0), r.cpu.host.toFixed(0),
  ]);
  const text = table(['facade', 'completed', 'failures', 'sagas/s', 'p50 ms', 'p99 ms', 'max ms', 'peak RSS MB', 'och cpu%', 'bench cpu%', 'upstreams cpu%', 'pg cpu%', 'kafka cpu%', 'host busy%'], rows);
  const failureLines = results.filter((r) => r.failures.total > 0).map((r) => `  ${r.facade} failures: ${r.failures.toString()}`);
  return [text, ...failureLines].join('\n');
}
