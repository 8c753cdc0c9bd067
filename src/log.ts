import winston from 'winston';
import type { Logger } from './engine/logger';

/** JSON lines on stdout; every line carries the pod id, and saga lines their request id, facade and node. */
export function createLogger(opts: { level: string; podId: string; service?: string }): Logger {
  return winston.createLogger({
    level: opts.level,
    defaultMeta: { podId: opts.podId, service: opts.service ?? 'orchestrator' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}
