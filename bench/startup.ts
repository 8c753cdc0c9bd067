/**
 * Start-up timing: how long after its spawn the orchestrator (Kafka + Postgres) answers gRPC, and
 * how long until /readyz says ready (its consumer groups in). Runs a fresh start, a restart after
 * SIGTERM and one after kill -9 under the same pod id, with the store empty, then again with
 * `--sagas N` parked Transfer sagas copied in by SQL (not started one by one: seconds, not minutes).
 * A measurement, not a test: `node dist/bench/startup.js [--sagas 100000] [--rounds 2]`.
 */
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { orchestratorClient, unaryCall } from './clients';
import { createDatabase, deleteTopics, freePort, Proc, ROOT, waitServing } from './stack';
import { startTransfer, untilWaiting } from './transfer';

const KAFKA_BROKERS = process.env.OCH_KAFKA_BROKERS ?? '127.0.0.1:9092';
const POLL_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Timing { grpcMs: number; getSagaMs: number; readyMs: number }

/** Polls until `probe` says yes; the time since t0 when it first did. */
async function firstYes(t0: number, probe: () => Promise<boolean>, proc: Proc, timeoutMs = 120_000): Promise<number> {
  for (;;) {
    if (await probe().catch(() => false)) return performance.now() - t0;
    if (!proc.running) throw new Error(`${proc.name} exited:\n${proc.lastLines()}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`no answer after ${timeoutMs} ms:\n${proc.lastLines()}`);
    await sleep(POLL_MS);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (flag: string, dflt: number) => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt);
  const sagas = arg('--sagas', 100_000);
  const rounds = arg('--rounds', 2);
  const db = await createDatabase();
  const runId = `startup-${Date.now().toString(36)}`;
  const [accounts, gateway, grpcPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const procs: Proc[] = [];
  const spawn = (name: string, args: string[], env: NodeJS.ProcessEnv) => {
    const p = new Proc(name, args, { OCH_LOG_LEVEL: 'warn', ...env });
    procs.push(p);
    return p;
  };
  const address = `127.0.0.1:${grpcPort}`;
  const env: NodeJS.ProcessEnv = {
    OCH_PATH: ROOT, POD_ID: 'startup-0', OCH_TRANSPORT: 'kafka', OCH_STORE: 'postgres', OCH_POSTGRES_DSN: db.dsn,
    OCH_KAFKA_BROKERS: KAFKA_BROKERS, OCH_TOPIC_PREFIX: `${runId}.`, OCH_KAFKA_GROUP_ID: runId,
    OCH_GRPC_PORT: String(grpcPort), OCH_HTTP_PORT: String(httpPort),
    OCH_ACCOUNTS_ADDR: `127.0.0.1:${accounts}`, OCH_GATEWAY_ADDR: `127.0.0.1:${gateway}`,
  };
  // Reconnecting at once: grpc-js backs off up to 2 minutes between attempts by default, which a process
  // that is not listening yet would otherwise be measured by.
  const client = orchestratorClient(address, { 'grpc.initial_reconnect_backoff_ms': POLL_MS, 'grpc.max_reconnect_backoff_ms': POLL_MS, 'grpc.min_reconnect_backoff_ms': POLL_MS });
  let orchestrator: Proc | undefined;
  const templateId = 'startup-template';

  /** Spawns the orchestrator and times its first answers: health SERVING, GetSaga, /readyz 200. */
  const start = async (): Promise<Timing> => {
    const t0 = performance.now();
    const proc = spawn('orchestrator', ['dist/src/main.js'], env);
    orchestrator = proc;
    const [grpcMs, getSagaMs, readyMs] = await Promise.all([
      firstYes(t0, async () => (await unaryCall(client, 'ListSagas', { page_size: 1 }, undefined, 1_000)).ok, proc),
      firstYes(t0, async () => {
        const r = await unaryCall(client, 'GetSaga', { request_id: templateId }, undefined, 1_000);
        return r.ok || r.code === 'NOT_FOUND';
      }, proc),
      firstYes(t0, async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, proc),
    ]);
    return { grpcMs, getSagaMs, readyMs };
  };
  const row = (what: string, t: Timing) =>
    console.log(`  ${what.padEnd(34)} first gRPC answer ${t.grpcMs.toFixed(0).padStart(6)} ms   GetSaga ${t.getSagaMs.toFixed(0).padStart(6)} ms   ready ${t.readyMs.toFixed(0).padStart(6)} ms`);
  const scenarios = async (label: string) => {
    console.log(`${label}:`);
    for (let r = 0; r < rounds; r++) {
      await orchestrator!.stop();
      row('restart after SIGTERM', await start());
      await orchestrator!.kill();
      await orchestrator!.exited;
      row('restart after kill -9 (same pod id)', await start());
    }
  };
  try {
    const services = [spawn('accounts', ['dist/src/examples/transfer/services/main.js', 'accounts', `127.0.0.1:${accounts}`], {}),
      spawn('gateway', ['dist/src/examples/transfer/services/main.js', 'gateway', `127.0.0.1:${gateway}`], {})];
    await Promise.all(services.map((p, i) => waitServing(`127.0.0.1:${[accounts, gateway][i]}`, p)));
    console.log(`startup: orchestrator on Kafka + Postgres (database ${db.name}), ${rounds} round(s) of each restart`);
    console.log('empty store:');
    row('fresh start (topics created)', await start());
    await scenarios('empty store (restarts)');
    const error = await startTransfer(client, templateId, 0) ?? await untilWaiting(client, templateId, 30_000);
    if (error) throw new Error(`the template saga did not park: ${error}`);
    if (sagas === 0) return;
    const filled = performance.now();
    await copyParked(db.dsn, templateId, sagas);
    console.log(`copied ${sagas} parked sagas in ${((performance.now() - filled) / 1000).toFixed(1)} s`);
    await scenarios(`${sagas} parked sagas in the store`);
  } finally {
    client.close();
    for (const p of procs.reverse()) await p.stop();
    await db.drop();
    await deleteTopics(`${runId}.`).catch(() => undefined);
  }
}

/**
 * N copies of a parked saga (its steps and events too) under new request ids: parked with no timer
 * and a lease nobody holds (a far expiry, owner gone), as an idle parked saga is meant to be.
 */
async function copyParked(dsn: string, templateId: string, n: number): Promise<void> {
  const db = new Client({ connectionString: dsn });
  await db.connect();
  try {
    const ids = `SELECT g, $1 || '-' || g AS id FROM generate_series(1, $2::int) g`;
    await db.query('CREATE EXTENSION IF NOT EXISTS hstore');
    await db.query('BEGIN');
    await db.query(`INSERT INTO sagas SELECT (s #= hstore(ARRAY['request_id', 'owner', 'wake_at', 'lease_expires_at', 'deadline'],
        ARRAY[i.id, 'parked/none', NULL, (now() + interval '1 day')::text, (now() + interval '1 day')::text])).*
      FROM sagas s, (${ids}) i WHERE s.request_id = $1`, [templateId, n]);
    await db.query(`INSERT INTO saga_steps SELECT (st #= hstore(ARRAY['request_id', 'wake_at'], ARRAY[i.id, NULL])).*
      FROM saga_steps st, (${ids}) i WHERE st.request_id = $1`, [templateId, n]);
    await db.query(`INSERT INTO saga_events SELECT (e #= hstore('request_id', i.id)).*
      FROM saga_events e, (${ids}) i WHERE e.request_id = $1`, [templateId, n]);
    await db.query('COMMIT');
    await db.query('ANALYZE');
  } finally {
    await db.end();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
