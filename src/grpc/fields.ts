import { ValidationError } from '../engine/errors';

/** Request fields as the edge checks them: each failure is INVALID_ARGUMENT naming the field. */

export function required(value: string | undefined, field: string): string {
  if (!value) throw new ValidationError(field, 'required');
  return value;
}

/** A `*_json` field; an empty string (proto3's unset) stands for `empty`. */
export function jsonField(value: string | undefined, field: string, empty: unknown): unknown {
  if (!value) return empty;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new ValidationError(field, 'must be JSON');
  }
}

/** A `*_json` field that must hold an object (named values, e.g. an event's payload); empty: {}. */
export function jsonObjectField(value: string | undefined, field: string): Record<string, unknown> {
  const parsed = jsonField(value, field, {});
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ValidationError(field, 'must be a JSON object');
  return parsed as Record<string, unknown>;
}
