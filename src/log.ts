import winston from 'winston';
import type { Logger } from './engine/logger';

type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
const noop = (): undefined => undefined;

/**
 * winston runs its formats (timestamp, JSON) on every call and drops disabled levels only in the
 * transport, and the engine makes a child logger per saga and step: disabled levels are cut off
 * here, and a child is made in winston only once it logs something.
 */
function gated(make: () => winston.Logger, enabled: ReadonlySet<Level>): Logger {
  let inner: winston.Logger | undefined;
  const get = () => (inner ??= make());
  const bind = (l: Level) => (enabled.has(l)
    ? (message: string, meta?: Record<string, unknown>) => (meta ? get()[l](message, meta) : get()[l](message))
    : noop);
  const [debug, info, warn, error] = LEVELS.map(bind);
  return { debug, info, warn, error, child: (meta) => gated(() => get().child(meta), enabled) };
}

/** JSON lines on stdout; every line carries the pod id, and saga lines their request id, facade and node. */
export function createLogger(opts: { level: string; podId: string; service?: string }): Logger {
  const logger = winston.createLogger({
    level: opts.level,
    defaultMeta: { podId: opts.podId, service: opts.service ?? 'orchestrator' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  return gated(() => logger, new Set(LEVELS.filter((l) => logger.isLevelEnabled(l))));
}
