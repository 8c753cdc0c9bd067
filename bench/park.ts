/**
 * Park test: the orchestrator on Kafka + Postgres (bench/stack.ts); its RSS idle, N Transfer sagas
 * started and parked on their webhook wait, RSS again, then one SendEvent each and the time until
 * all are COMPLETED. Every saga must be resumed within saga.asyncDeadlineMs (app.yaml: 300 s) of
 * its start, or it is compensated (DEADLINE_EXCEEDED). `node dist/bench/park.js --sagas 10000 [--concurrency 64]` (`make bench-park`).
 */
import { performance } from 'node:perf_hooks';
import { listAllSagas, orchestratorClient } from './clients';
import { rssMb } from './procfs';
import { BenchStack } from './stack';
import { Failures } from './stats';
import { confirm, forEachLimited, getSaga, startTransfer, TRANSFER } from './transfer';

const USAGE = 'usage: node dist/bench/park.js [--sagas N] [--concurrency N] [--clients N] [--timeout S]';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parse(argv: string[]): { sagas: number; concurrency: number; clients: number; timeoutS: number } {
  const o = { sagas: 10_000, concurrency: 64, clients: 4, timeoutS: 600 };
  for (let i = 0; i < argv.length; i++) {
    const n = Number(argv[i + 1]);
    if (!['--sagas', '--concurrency', '--clients', '--timeout'].includes(argv[i]) || !(n > 0)) throw new Error(USAGE);
    const key = ({ '--sagas': 'sagas', '--concurrency': 'concurrency', '--clients': 'clients', '--timeout': 'timeoutS' } as const)[argv[i] as '--sagas'];
    o[key] = Math.floor(n);
    i++;
  }
  return o;
}

const mb = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));

/** Polls `count()` every second until it reaches `target` or the deadline; the seconds it took. */
async function until(what: string, target: number, count: () => Promise<number>, timeoutS: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const n = await count();
    const s = (performance.now() - t0) / 1000;
    if (n >= target) return s;
    if (s > timeoutS) throw new Error(`${what}: ${n} of ${target} after ${timeoutS} s`);
    process.stdout.write(`  ${what}: ${n}/${target} after ${s.toFixed(0)} s\n`);
    await sleep(1_000);
  }
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const stack = new BenchStack();
  const clients = Array.from({ length: opts.clients }, () => ({ c: undefined as ReturnType<typeof orchestratorClient> | undefined }));
  const interrupt = () => {
    console.log('interrupted; stopping');
    // fire-and-forget from a signal handler: exits once the stack has stopped (database and topics dropped)
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    await stack.start();
    const pid = stack.orchestrators[0].pid;
    clients.forEach((c) => { c.c = orchestratorClient(stack.addresses[0]); });
    const client = (i: number) => clients[i % clients.length].c!;
    await sleep(5_000);
    const idle = await rssMb(pid);
    console.log(`park: ${opts.sagas} Transfer sagas, ${opts.concurrency} concurrent calls; orchestrator pid ${pid}, idle RSS ${mb(idle)} MB`);

    const failures = new Failures();
    const createdFrom = new Date(Date.now() - 1_000).toISOString();
    const tag = `${stack.runId}-p`;
    const t0 = performance.now();
    await forEachLimited(opts.sagas, opts.concurrency, async (i) => {
      const error = await startTransfer(client(i), `${tag}-${i}`, i);
      if (error) failures.add(error);
    });
    const startS = (performance.now() - t0) / 1000;
    console.log(`started ${opts.sagas} in ${startS.toFixed(1)} s (${(opts.sagas / startS).toFixed(0)}/s), start failures ${failures.toString()}`);

    // Parked: every saga waits for its webhook (GetSaga, re-asked only for those not yet waiting).
    let pending = Array.from({ length: opts.sagas }, (_, i) => i);
    const parkS = await until('parked', opts.sagas, async () => {
      const still: number[] = [];
      await forEachLimited(pending.length, opts.concurrency, async (k) => {
        const i = pending[k];
        const saga = await getSaga(client(i), `${tag}-${i}`);
        if (typeof saga === 'string' || !saga.waiting.some((w) => w.node === 'webhook')) still.push(i);
      });
      pending = still;
      return opts.sagas - pending.length;
    }, opts.timeoutS);
    const parkedAfterS = startS + parkS;
    await sleep(5_000);
    const parked = await rssMb(pid);
    console.log(`all ${opts.sagas} parked ${parkedAfterS.toFixed(1)} s after the first start; RSS ${mb(parked)} MB (5 s later)`);

    const t1 = performance.now();
    const eventFailures = new Failures();
    await forEachLimited(opts.sagas, opts.concurrency, async (i) => {
      const error = await confirm(client(i), `${tag}-${i}`);
      if (error) eventFailures.add(error);
    });
    const sendS = (performance.now() - t1) / 1000;
    console.log(`sent ${opts.sagas} events in ${sendS.toFixed(1)} s (${(opts.sagas / sendS).toFixed(0)}/s), failures ${eventFailures.toString()}`);
    const firstEvent = Date.now() - sendS * 1000;
    await until('completed', opts.sagas, async () => (await listAllSagas(client(0), { facade: TRANSFER, status: 'COMPLETED', createdFrom })).length, opts.timeoutS);
    const rows = await listAllSagas(client(0), { facade: TRANSFER, status: 'COMPLETED', createdFrom });
    const lastDone = Math.max(...rows.map((r) => Date.parse(r.updated_at)));
    const resumeS = (lastDone - firstEvent) / 1000;
    const after = await rssMb(pid);

    console.log('\npark summary (Kafka transport, Postgres store)');
    console.log(`  sagas                      ${opts.sagas}`);
    console.log(`  idle RSS                   ${mb(idle)} MB`);
    console.log(`  RSS with ${opts.sagas} parked    ${mb(parked)} MB`);
    console.log(`  delta per 1000 parked      ${idle !== undefined && parked !== undefined ? (((parked - idle) * 1000) / opts.sagas).toFixed(2) : '-'} MB`);
    console.log(`  start + park               ${parkedAfterS.toFixed(1)} s`);
    console.log(`  resume (first SendEvent .. last COMPLETED updated_at)  ${resumeS.toFixed(1)} s = ${(opts.sagas / resumeS).toFixed(0)} sagas/s (events sent in ${sendS.toFixed(1)} s)`);
    console.log(`  RSS after all completed    ${mb(after)} MB`);
  } finally {
    clients.forEach((c) => c.c?.close());
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
