import type { Logger } from '../../engine/logger';
import { createLogger } from '../../log';

/** A demo upstream, started: stop() lets in-flight calls finish (and saves what it must keep). */
export interface RunningService {
  stop(): Promise<void>;
}

export type ServiceStarter = (address: string, log: Logger) => Promise<RunningService>;

/** How long in-flight calls may run on after SIGTERM before they are cut. */
export const DEMO_SHUTDOWN_GRACE_MS = 5_000;

/**
 * The main of a demo upstream process: `node <script> <kind> <host:port>` starts `services[kind]`
 * there, logging JSON lines (OCH_LOG_LEVEL, POD_ID; `service` is the kind). SIGTERM or SIGINT stops
 * it and exits 0; a failure to start exits 1, a bad command line 2.
 */
export function runDemoService(script: string, services: Readonly<Record<string, ServiceStarter>>): void {
  const [kind, address] = process.argv.slice(2);
  const start = kind !== undefined && Object.hasOwn(services, kind) ? services[kind] : undefined;
  if (!start || !address) {
    process.stderr.write(`usage: ${script} ${Object.keys(services).join('|')} <host:port>\n`);
    process.exit(2);
  }
  const log = createLogger({ level: process.env.OCH_LOG_LEVEL ?? 'info', podId: process.env.POD_ID ?? 'local', service: kind });
  start(address, log).then((running) => {
    const stop = () => running.stop().then(() => process.exit(0));
    // fire-and-forget from a signal handler: stop() ends the process (a failure is an unhandled rejection: exit 1)
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  }).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
