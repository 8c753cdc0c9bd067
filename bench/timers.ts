/**
 * Timer lateness: N Transfer sagas whose webhook wait times out (no event is sent), on Kafka +
 * Postgres. For each, the wait's timer (`until`, in its STEP_WAITING history entry) against when it
 * fired (its STEP_FAILED entry): how late the owning instance fires a due timer.
 * `node dist/bench/timers.js [--sagas N] [--timeout-ms MS] [--concurrency N]` (`make bench-timers`).
 */
import { orchestratorClient, unaryCall } from './clients';
import { BenchStack } from './stack';
import { Latencies } from './stats';
import { forEachLimited, TRANSFER } from './transfer';

const USAGE = 'usage: node dist/bench/timers.js [--sagas N] [--timeout-ms MS] [--concurrency N]';

interface HistoryEntry { type: string; step: string; at: string; detail: string }
interface SagaView { status: string; history: HistoryEntry[] }

function parse(argv: string[]): { sagas: number; timeoutMs: number; concurrency: number } {
  const o = { sagas: 1_000, timeoutMs: 3_000, concurrency: 32 };
  const keys: Record<string, keyof typeof o> = { '--sagas': 'sagas', '--timeout-ms': 'timeoutMs', '--concurrency': 'concurrency' };
  for (let i = 0; i < argv.length; i += 2) {
    const n = Number(argv[i + 1]);
    if (!keys[argv[i]] || !(n > 0)) throw new Error(USAGE);
    o[keys[argv[i]]] = Math.floor(n);
  }
  return o;
}

/** How late the webhook's timer fired, in ms; undefined while the saga has not timed out. */
function lateness(saga: SagaView): number | undefined {
  const waiting = saga.history.find((e) => e.type === 'STEP_WAITING' && e.step === 'webhook');
  const fired = saga.history.find((e) => e.type === 'STEP_FAILED' && e.step === 'webhook');
  const until = /until (\S+)$/.exec(waiting?.detail ?? '')?.[1];
  if (!fired || !until) return undefined;
  return Date.parse(fired.at) - Date.parse(until);
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const stack = new BenchStack();
  try {
    await stack.start();
    const client = orchestratorClient(stack.addresses[0]);
    const ids = Array.from({ length: opts.sagas }, (_, i) => `${stack.runId}-t-${i}`);
    const t0 = Date.now();
    await forEachLimited(ids.length, opts.concurrency, async (i) => {
      const input = { from: `a${i % 100}`, to: `b${i % 100}`, amount: 100, webhookTimeoutMs: opts.timeoutMs };
      const res = await unaryCall(client, 'StartSaga', { facade: TRANSFER, version: 1, input_json: JSON.stringify(input) }, ids[i], 30_000);
      if (!res.ok) throw new Error(`StartSaga ${ids[i]}: ${res.code} ${res.message}`);
    });
    console.log(`timers: ${opts.sagas} Transfer sagas started in ${((Date.now() - t0) / 1000).toFixed(1)} s, webhook timeout ${opts.timeoutMs} ms, no events sent`);
    const late = new Latencies();
    let pending = ids;
    while (pending.length > 0) {
      await new Promise((r) => setTimeout(r, 500));
      const still: string[] = [];
      await forEachLimited(pending.length, opts.concurrency, async (k) => {
        const res = await unaryCall<SagaView>(client, 'GetSaga', { request_id: pending[k] }, undefined, 30_000);
        const ms = res.ok ? lateness(res.response) : undefined;
        if (ms === undefined) still.push(pending[k]);
        else late.add(ms);
      });
      pending = still;
      if (Date.now() - t0 > opts.timeoutMs + 120_000) throw new Error(`${pending.length} sagas have not timed out`);
    }
    const s = late.summary();
    console.log(`\ntimer lateness (fired - due), ${s.count} timers: p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`);
    client.close();
  } finally {
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
