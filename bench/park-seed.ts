/**
 * Parks N sagas the quick way: a few real ones of each shape started through gRPC on each instance
 * (a Transfer waiting for its webhook hours away, a ParkSleep sleeping), then their rows in sagas,
 * saga_steps and saga_events cloned in Postgres in batches, under new request ids, with their
 * timestamps shifted and their timers set where the bench wants them. Starting 1,000,000 through
 * gRPC takes about 35 minutes on the bench's 2-core box; cloning takes a few.
 *
 * Every table with a request_id column is cloned (sagas first), and its columns generically, so
 * that a schema that grows (a table of timers, a column) is seeded all the same: the request id is new, timestamps
 * move with the clone's creation, wake_at (and the "until" of the parking entry) is the clone's
 * timer; every other column, owner and lease columns included, is the template's as it stands
 * (an instance that holds a lease on a parked saga gets one on each clone; one that holds none,
 * none). Templates are taken from every instance in turn, so each holds its share.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Client } from 'pg';
import { unaryCall } from './clients';
import { until } from './park-phases';
import { TRANSFER } from './transfer';

/** Hours away: no wait times out during a run. */
export const WAIT_TIMEOUT_MS = 6 * 3_600_000;
/** The templates' own sleeps: never due during a run (their clones get their own times). */
const TEMPLATE_SLEEP_MS = 12 * 3_600_000;

export interface Seeded {
  /** Clones parked on the webhook wait: `${waitPrefix}${i}`, i < waits. */
  waitPrefix: string; waits: number;
  /** Clones sleeping: `${sleepPrefix}${i}`, i < sleeps, due from due0 over windowMs in even steps. */
  sleepPrefix: string; sleeps: number; due0: number; windowMs: number;
  /** Clones all due in the second from burstAt: `${burstPrefix}${i}`, sleeps <= i < sleeps + burst. */
  burstPrefix: string; burst: number; burstAt: number;
  templates: string[];
  seconds: number;
}

interface SeedPlan { tag: string; waits: number; sleeps: number; burst: number; leadMs: number; windowMs: number; burstAfterMs: number; perInstance: number; batch: number }

async function startTemplates(clients: grpc.Client[], tag: string, perInstance: number): Promise<{ waits: string[]; sleeps: string[] }> {
  const waits: string[] = [];
  const sleeps: string[] = [];
  for (const [c, client] of clients.entries()) {
    for (let k = 0; k < perInstance; k++) {
      const w = `${tag}-tw-${c}-${k}`;
      const s = `${tag}-ts-${c}-${k}`;
      const input = { from: `a${k}`, to: `b${k}`, amount: 100, webhookTimeoutMs: WAIT_TIMEOUT_MS };
      const started = [
        await unaryCall(client, 'StartSaga', { facade: TRANSFER, version: 1, input_json: JSON.stringify(input) }, w, 30_000),
        await unaryCall(client, 'StartSaga', { facade: 'ParkSleep', version: 1, input_json: JSON.stringify({ delayMs: TEMPLATE_SLEEP_MS }) }, s, 30_000),
      ];
      for (const r of started) if (!r.ok) throw new Error(`StartSaga of a template: ${r.code} ${r.message}`);
      waits.push(w);
      sleeps.push(s);
    }
  }
  return { waits, sleeps };
}

type Column = { name: string; type: string };

async function columnsOf(db: Client, table: string): Promise<Column[]> {
  const { rows } = await db.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`, [table]);
  return rows.map((r) => ({ name: r.column_name, type: r.data_type }));
}

/** What a clone's column is, from its template's row `t` and the clone's `c` (id, created, shift, wake). */
function expression(col: Column, table: string): string {
  const name = `"${col.name}"`;
  if (col.name === 'request_id') return 'c.id';
  if (table === 'sagas' && col.name === 'created_at') return 'c.created';
  if (col.name === 'wake_at') return `CASE WHEN t.wake_at IS NULL THEN NULL ELSE c.wake END`;
  if (table === 'saga_events' && col.name === 'detail') {
    return `CASE WHEN t.type = 'STEP_WAITING' AND t.detail ~ 'until \\S+$'
                 THEN regexp_replace(t.detail, 'until \\S+$', 'until ' || to_char(c.wake AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                 ELSE t.detail END`;
  }
  // Leases and ownership are the template's, as they stand (see the file comment).
  if (col.type.startsWith('timestamp') && !col.name.includes('lease')) return `t.${name} + c.shift`;
  return `t.${name}`;
}

/**
 * One batch [from, to) of clones of one shape, in one transaction: clone g copies template
 * g % templates. $1 templates, $2 from, $3 to, $4 created of clone 0, $5 ms between clones' creation.
 */
function cloneSql(table: string, columns: Column[], idOf: string, wakeOf: string): string {
  const list = columns.map((c) => `"${c.name}"`).join(', ');
  return `
WITH tp AS (SELECT id, k - 1 AS k FROM unnest($1::text[]) WITH ORDINALITY AS u(id, k)),
c0 AS (
  SELECT g, tp.id AS template, ${idOf} AS id, $4::timestamptz + (g * $5::float8) * interval '1 millisecond' AS created
    FROM generate_series($2::int, $3::int - 1) g JOIN tp ON tp.k = g % cardinality($1::text[])
),
c AS (
  SELECT c0.*, c0.created - s.created_at AS shift, ${wakeOf} AS wake FROM c0 JOIN sagas s ON s.request_id = c0.template
)
INSERT INTO ${table} (${list})
SELECT ${columns.map((c) => expression(c, table)).join(', ')} FROM c JOIN ${table} t ON t.request_id = c.template`;
}

/** The tables that hold a saga's rows: sagas first (the others may refer to it). */
async function sagaTables(db: Client): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string }>(`
    SELECT c.table_name FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema AND t.table_type = 'BASE TABLE'
     WHERE c.column_name = 'request_id' AND c.table_schema = current_schema() AND c.table_name <> 'sagas' ORDER BY c.table_name`);
  return ['sagas', ...rows.map((r) => r.table_name)];
}

async function cloneShape(db: Client, what: string, templates: string[], n: number, batch: number, idOf: string, wakeOf: string, created0: Date, stepMs: number): Promise<void> {
  const statements = [];
  for (const table of await sagaTables(db)) statements.push(cloneSql(table, await columnsOf(db, table), idOf, wakeOf));
  const t0 = Date.now();
  for (let from = 0; from < n; from += batch) {
    const to = Math.min(n, from + batch);
    await db.query('BEGIN');
    for (const sql of statements) await db.query(sql, [templates, from, to, created0, stepMs]);
    await db.query('COMMIT');
    if (Math.floor(to / (batch * 10)) !== Math.floor(from / (batch * 10)) || to === n) console.log(`  ${what}: ${to}/${n} cloned (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

/** Templates through gRPC, then the clones by SQL; a VACUUM ANALYZE after, as autovacuum would do after a bulk load. */
export async function seed(db: Client, clients: grpc.Client[], plan: SeedPlan, timeoutS: number): Promise<Seeded> {
  const t0 = Date.now();
  const templates = await startTemplates(clients, plan.tag, plan.perInstance);
  const all = [...templates.waits, ...templates.sleeps];
  await until('templates parked', all.length, async () => (await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM saga_steps WHERE request_id = ANY($1) AND status = 'WAITING' AND name IN ('webhook', 'sleep')`, [all])).rows[0].n, timeoutS, 200);
  const owners = (await db.query<{ owner: string | null; n: number }>('SELECT owner, count(*)::int AS n FROM sagas WHERE request_id = ANY($1) GROUP BY owner', [all])).rows;
  console.log(`templates parked: ${all.length} (${templates.waits.length} Transfer, ${templates.sleeps.length} ParkSleep), owners ${owners.map((o) => `${o.owner ?? 'NULL'}=${o.n}`).join(' ')}`);

  // Clones were created one per `stepMs` over the past, waits and sleeps interleaved, the newest now.
  const stepMs = 1;
  const created0 = new Date(Date.now() - 2 * Math.max(plan.waits, plan.sleeps + plan.burst) * stepMs - 1_000);
  const waitPrefix = `${plan.tag}-w-`;
  const wavesAt = Date.now();
  await cloneShape(db, 'waits', templates.waits, plan.waits, plan.batch, `'${waitPrefix}' || g`, 's.wake_at + (c0.created - s.created_at)', created0, 2 * stepMs);

  // The lead counts from the end of seeding: the sleeps (fewer rows each) and the VACUUM take about what the waits took.
  const due0 = Date.now() + plan.leadMs + (Date.now() - wavesAt);
  const burstAt = due0 + plan.burstAfterMs;
  const [sleepPrefix, burstPrefix] = [`${plan.tag}-s-`, `${plan.tag}-b-`];
  const regular = plan.sleeps;
  const idOf = `CASE WHEN g < ${regular} THEN '${sleepPrefix}' ELSE '${burstPrefix}' END || g`;
  const wakeOf = `CASE WHEN g < ${regular}
      THEN to_timestamp(${due0 / 1000}) + (g * ${plan.windowMs / Math.max(1, regular)}::float8) * interval '1 millisecond'
      ELSE to_timestamp(${burstAt / 1000}) + ((g - ${regular}) * ${1000 / Math.max(1, plan.burst)}::float8) * interval '1 millisecond' END`;
  await cloneShape(db, 'sleeps', templates.sleeps, regular + plan.burst, plan.batch, idOf, wakeOf, new Date(created0.getTime() + stepMs), 2 * stepMs);

  const tables = (await sagaTables(db)).join(', ');
  console.log(`cloned the rows of ${tables}; VACUUM ANALYZE of them (as autovacuum would after the bulk insert)`);
  await db.query(`VACUUM ANALYZE ${tables}`);
  return {
    waitPrefix, waits: plan.waits, sleepPrefix, sleeps: regular, due0, windowMs: plan.windowMs, burstPrefix, burst: plan.burst, burstAt,
    templates: all, seconds: (Date.now() - t0) / 1000,
  };
}
