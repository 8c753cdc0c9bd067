import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { ROOT } from './stack';

/**
 * The shipped app.yaml as `make run` reads it, without this shell's OCH_* overrides: tests that
 * must run what users run (its ports, its addresses) read them from here, not from a copy.
 */
export const SHIPPED = loadConfig(path.join(ROOT, 'app.yaml'), {});

/** host:port as a URL writes it (an IPv6 address in brackets). */
export function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The console's address `make run` prints: the shipped http.host and http.port. */
export const SHIPPED_CONSOLE = `http://${authority(SHIPPED.http.host, SHIPPED.http.port)}`;
