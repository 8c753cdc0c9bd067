import winston from 'winston';
import type { Logger } from './engine/logger';

type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
const noop = (): undefined => undefined;

/**
 * winston runs its formats (timestamp, JSON) on every call and drops disabled levels only in the
 * transport; sagas log several lines each, so disabled levels are cut off here, before winston.
 */
function gated(inner: winston.Logger): Logger {
  const bind = (l: Level) => (inner.isLevelEnabled(l)
    ? (message: string, meta?: Record<string, unknown>) => (meta ? inner[l](message, meta) : inner[l](message))
    : noop);
  const [debug, info, warn, error] = LEVELS.map(bind);
  return { debug, info, warn, error, child: (meta) => gated(inner.child(meta)) };
}

/** JSON lines on stdout; every line carries the pod id, and saga lines their request id, facade and node. */
export function createLogger(opts: { level: string; podId: string; service?: string }): Logger {
  const logger = winston.createLogger({
    level: opts.level,
    defaultMeta: { podId: opts.podId, service: opts.service ?? 'orchestrator' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  return gated(logger);
}
