import type { Pool, PoolClient } from 'pg';
import { StoreUnavailableError, ensureError } from '../../engine/errors';

/**
 * Every statement here finds its rows through an index, by request id or by an indexed range. A
 * prepared statement's plan is cached from when the tables were small, where a sequential scan
 * and a hash join win, and kept as they grow until an ANALYZE (a save then scanned every saga:
 * 12 ms at 20,000 sagas, instead of 0.5 ms). With these off, plans use the indexes at any size.
 * The penalty Postgres adds to a disabled plan, or statistics never gathered (autovacuum off),
 * inflate estimated costs past jit_above_cost: a list() page then spent 130-300 ms compiling its
 * query for 20 ms of work. No statement here runs long enough to gain from JIT: it is off.
 */
const INDEX_ONLY_PLANS = '-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off -c jit=off';

/**
 * Connection settings that carry INDEX_ONLY_PLANS in each connection's startup packet (`options`),
 * so that no query of their own is queued ahead of the pool's first one. pg takes `options` from the
 * DSN over the config, and from PGOPTIONS only when the config has none: either is kept, after ours
 * (a setting given there wins).
 */
export function indexOnlyPlansConnection(dsn: string, env: NodeJS.ProcessEnv = process.env): { connectionString: string; options: string } {
  return {
    // Spaces as %20, '=' as is: pg re-encodes a DSN holding a space or a stray '%' with encodeURI.
    connectionString: dsn.replace(/([?&])options=/, `$1options=${INDEX_ONLY_PLANS.replaceAll(' ', '%20')}%20`),
    options: [INDEX_ONLY_PLANS, env.PGOPTIONS].filter(Boolean).join(' '),
  };
}

/** Socket-level failures: the database is unreachable, not wrong. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = [
  'Connection terminated', // "... unexpectedly", "... due to connection timeout"
  'timeout exceeded when trying to connect', // pg-pool: no connection within connectionTimeoutMillis
  'is not queryable', // a client whose connection already failed
];

/**
 * True when `err` means Postgres cannot be reached (or is shutting down / starting up): SQLSTATE
 * class 08 (connection exception) and 57P0x (admin/crash shutdown, cannot connect now), socket
 * errors and the pg driver's own connection failures.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_ERRNOS.has(code) || /^08[0-9A-Z]{3}$/.test(code) || /^57P0\d$/.test(code))) return true;
  if (CONNECTION_MESSAGES.some((m) => err.message.includes(m))) return true;
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return err.cause !== undefined && err.cause !== err && isConnectionError(err.cause);
}

/** Connection failures become StoreUnavailableError (retryable); anything else is left as it is. */
export function translate(err: unknown, what: string): Error {
  if (isConnectionError(err)) return new StoreUnavailableError(`${what}: ${ensureError(err).message}`, { cause: err });
  return ensureError(err);
}

/**
 * Runs `work` in one transaction on a client of its own: COMMIT when it returns, ROLLBACK when it
 * throws. A client whose ROLLBACK fails is released as broken, so the pool drops it rather than
 * hand out a connection still inside a transaction. A checked-out client has no 'error' listener:
 * a connection lost between two of its queries would otherwise crash the process; `onLost` hears
 * of it and the failing query reports the error.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, onLost: (err: Error) => void = () => undefined): Promise<T> {
  const client = await pool.connect();
  client.on('error', onLost);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => { broken = rollbackErr; });
      throw err;
    }
  } finally {
    client.removeListener('error', onLost);
    client.release(broken);
  }
}
