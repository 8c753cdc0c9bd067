import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';

/**
 * Option and argument parsers. Each throws commander's InvalidArgumentError, which commander
 * reports naming the option and the value; the CLI exits with INVALID_ARGUMENT (3) for them, as
 * the server would for a bad field.
 */

export const SAGA_STATUSES = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'] as const;

export function address(value: string): string {
  if (!/^[^\s:/]+:\d{1,5}$/.test(value) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(value)) throw new InvalidArgumentError('expected host:port, e.g. 127.0.0.1:10000');
  return value;
}

export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return Number(value);
  };
}

/** Any case, `-` or `_`: compensation-failed → COMPENSATION_FAILED. */
export function sagaStatus(value: string): string {
  const status = value.toUpperCase().replace(/-/g, '_');
  if (!(SAGA_STATUSES as readonly string[]).includes(status)) throw new InvalidArgumentError(`expected one of ${SAGA_STATUSES.join(', ')}`);
  return status;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An RFC 3339 time, or a duration before now (`90s`, `15m`, `2h`, `7d`), as the server wants it: RFC 3339. */
export function timestamp(now: () => number = Date.now): (value: string) => string {
  return (value) => {
    const ago = /^(\d+)([smhd])$/.exec(value);
    if (ago) return new Date(now() - Number(ago[1]) * UNIT_MS[ago[2]]).toISOString();
    // Date.parse alone takes "1" or "May 5": only full dates, optionally with a time, are RFC 3339-like.
    if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(value) || Number.isNaN(Date.parse(value))) {
      throw new InvalidArgumentError('expected an RFC 3339 time (2026-12-03T10:00:00Z) or a duration before now (90s, 15m, 2h, 7d)');
    }
    return new Date(Date.parse(value)).toISOString();
  };
}

/**
 * A JSON document given inline, as `@FILE`, or as `@-` (standard input); handed to the server as
 * text, re-serialised so that it is compact. `object`: it must be a JSON object.
 */
export function json(object: boolean, read: (file: string) => string = (f) => readFileSync(f === '-' ? 0 : f, 'utf8')): (value: string) => string {
  return (value) => {
    let text = value;
    if (value.startsWith('@')) {
      try {
        text = read(value.slice(1));
      } catch (err) {
        throw new InvalidArgumentError(`cannot read ${value.slice(1)}: ${(err as Error).message}`);
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`not JSON: ${(err as Error).message}`);
    }
    if (object && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) throw new InvalidArgumentError('expected a JSON object');
    return JSON.stringify(parsed);
  };
}
