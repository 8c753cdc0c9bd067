import { ValidationError } from '../engine/errors';
import { checkJsonTextSize, checkText } from '../engine/payload';

/** Request fields as the edge checks them: each failure is INVALID_ARGUMENT naming the field. */

export function required(value: string | undefined, field: string): string {
  if (!value) throw new ValidationError(field, 'required');
  return value;
}

/**
 * A `*_json` field; an empty string (proto3's unset) stands for `empty`. Over `maxBytes`, refused
 * before it is parsed; text the store cannot keep is refused naming its path (e.g. `payload_json.note`).
 * The engine checks the value again where every way in meets (src/engine/payload.ts).
 */
export function jsonField(value: string | undefined, field: string, empty: unknown, maxBytes?: number): unknown {
  if (!value) return empty;
  if (maxBytes !== undefined) checkJsonTextSize(value, field, maxBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value) as unknown;
  } catch {
    throw new ValidationError(field, 'must be JSON');
  }
  checkText(parsed, field);
  return parsed;
}

/** A `*_json` field that must hold an object (named values, e.g. an event's payload); empty: {}. */
export function jsonObjectField(value: string | undefined, field: string, maxBytes?: number): Record<string, unknown> {
  const parsed = jsonField(value, field, {}, maxBytes);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ValidationError(field, 'must be a JSON object');
  return parsed as Record<string, unknown>;
}
