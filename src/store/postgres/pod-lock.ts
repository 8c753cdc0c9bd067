import { Client } from 'pg';
import { OrchestratorError } from '../../engine/errors';
import type { Logger } from '../../engine/logger';

/** Advisory locks of this project are (NAMESPACE, hashtext(pod id)): apart from any other application's in the database. */
const NAMESPACE = 0x5a6a;
const TRY_LOCK = 'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked';
/** How often a lock whose connection broke is taken again. */
const RETAKE_MS = 2_000;

/**
 * One live instance per pod id: a session-level advisory lock, held on a connection of its own for
 * the life of the process. Postgres drops it the moment that connection goes (a crash, kill -9), so
 * an instance restarted under the same pod id takes it at once, while a second live one is refused.
 */
export class PodLock {
  private closed = false;
  private retake?: NodeJS.Timeout;

  private constructor(
    private readonly connect: () => Client,
    private readonly podId: string,
    private readonly log: Logger,
    private client: Client,
  ) {}

  /** Takes the lock, or throws FAILED_PRECONDITION naming the pod id when another live instance holds it. */
  static async acquire(connect: () => Client, podId: string, log: Logger): Promise<PodLock> {
    const client = await PodLock.take(connect, podId);
    if (!client) {
      throw new OrchestratorError('FAILED_PRECONDITION', `pod id ${podId} is in use by another live instance on this database: `
        + 'give each instance its own POD_ID (podId), e.g. its host or pod name');
    }
    const lock = new PodLock(connect, podId, log, client);
    lock.watch(client);
    return lock;
  }

  async release(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retake);
    await this.client.end().catch(() => undefined);
  }

  /** A connected client holding the lock, or undefined when another session holds it. */
  private static async take(connect: () => Client, podId: string): Promise<Client | undefined> {
    const client = connect();
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>(TRY_LOCK, [NAMESPACE, podId]);
      if (rows[0].locked) return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    await client.end().catch(() => undefined);
    return undefined;
  }

  /** The lock goes with its connection (Postgres restarted, network cut): it is taken again once Postgres answers. */
  private watch(client: Client): void {
    client.on('error', (err) => this.log.warn('pod id lock: connection failed; taking the lock again', { podId: this.podId, error: err.message }));
    client.on('end', () => {
      if (!this.closed) this.retake = setTimeout(() => void this.again(), RETAKE_MS);
    });
  }

  private async again(): Promise<void> {
    if (this.closed) return;
    try {
      const client = await PodLock.take(this.connect, this.podId);
      if (this.closed) {
        await client?.end().catch(() => undefined);
        return;
      }
      if (client) {
        this.client = client;
        this.watch(client);
        this.log.info('pod id lock taken again', { podId: this.podId });
        return;
      }
      this.log.error('pod id lock: another live instance took this pod id while the connection was down: give each instance its own POD_ID', { podId: this.podId });
    } catch (err) {
      this.log.warn('pod id lock: Postgres not answering; will try again', { podId: this.podId, error: (err as Error).message });
    }
    this.retake = setTimeout(() => void this.again(), RETAKE_MS);
  }
}
