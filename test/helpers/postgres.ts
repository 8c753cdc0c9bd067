import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';

const run = promisify(execFile);

/** The shared test server (scripts start it): trust auth, user postgres. */
export const POSTGRES_ADMIN_DSN = process.env.POSTGRES_ADMIN_DSN ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function dsnFor(database: string): string {
  const url = new URL(POSTGRES_ADMIN_DSN);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: POSTGRES_ADMIN_DSN });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new, empty, uniquely named database on the shared server; drop() removes it (idempotent). */
export async function freshDatabase(): Promise<{ name: string; dsn: string; drop: () => Promise<void> }> {
  const name = `saga_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    dsn: dsnFor(name),
    drop: () => admin(async (c) => { await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); }),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * initdb and postgres refuse to run as root: as root, the cluster runs as the unprivileged
 * `postgres` user (runuser) in a directory it owns.
 */
const AS_ROOT = process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

function command(bin: string, args: string[]): [string, string[]] {
  return AS_ROOT ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/**
 * A Postgres cluster of its own, to stop and start under a test's feet: the first start() runs
 * initdb into a temporary directory; the server listens on 127.0.0.1 and a free port (kept across
 * restarts), trust auth for user postgres, fsync off. destroy() stops it and removes the directory.
 */
export class ThrowawayPostgres {
  private dir: string | undefined;
  private port = 0;
  private readonly exitHook = (): void => this.kill();

  get dsn(): string {
    if (!this.dir) throw new Error('ThrowawayPostgres: start() it first');
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    if (!this.dir) await this.init();
    const dir = this.dir as string;
    // A test run that dies without destroy() must not leave a server behind.
    process.removeListener('exit', this.exitHook);
    process.once('exit', this.exitHook);
    await this.pgCommand('pg_ctl', [
      'start', '-w', '-t', '30', '-D', path.join(dir, 'data'), '-l', path.join(dir, 'postgres.log'),
      '-o', `-k ${dir} -c listen_addresses=127.0.0.1 -p ${this.port} -c fsync=off`,
    ]);
  }

  /** Fast shutdown: open connections are terminated (SQLSTATE 57P01). */
  async stop(): Promise<void> {
    if (!this.dir) return;
    await this.pgCommand('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'fast', '-D', path.join(this.dir, 'data')]);
    process.removeListener('exit', this.exitHook);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the server if it runs and removes its directory. Safe to call twice. */
  async destroy(): Promise<void> {
    this.kill();
    process.removeListener('exit', this.exitHook);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private async init(): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), 'saga-pg-'));
    if (AS_ROOT) {
      const { uid, gid } = postgresUser();
      chownSync(dir, uid, gid);
    }
    this.dir = dir;
    this.port = await freePort();
    await this.pgCommand('initdb', ['-D', path.join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  }

  /** Synchronous (usable on process exit): immediate shutdown if a server runs; errors ignored. */
  private kill(): void {
    if (!this.dir) return;
    const [bin, args] = command('pg_ctl', ['stop', '-w', '-m', 'immediate', '-D', path.join(this.dir, 'data')]);
    try {
      execFileSync(bin, args, { stdio: 'ignore' });
    } catch {
      // not running
    }
  }

  private async pgCommand(bin: string, args: string[]): Promise<void> {
    const [file, argv] = command(bin, args);
    try {
      await run(file, argv, { cwd: this.dir });
    } catch (err) {
      const { stderr, stdout } = err as { stderr?: string; stdout?: string };
      throw new Error(`${bin} ${args[0]} failed: ${String(stderr || stdout || err)}`, { cause: err });
    }
  }
}
