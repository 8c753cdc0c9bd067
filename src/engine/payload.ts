import { ValidationError } from './errors';

/**
 * The one check of every JSON value the edge accepts (facade inputs, StartSaga's input, event
 * payloads, external steps' outputs and errors, from gRPC, the console or Kafka) and of what
 * in-process steps return. Two things are refused:
 *
 * - text Postgres cannot keep: `\u0000` and unpaired UTF-16 surrogates. JavaScript strings hold
 *   them, JSON.stringify writes them as escapes, and only the store's `::jsonb` cast rejects them,
 *   possibly long after the value was accepted (an event kept until a wait takes it): the message
 *   driving the saga then fails on every try and the saga is stranded;
 * - values over `maxBytes` once serialised: the store keeps them and every write of the saga
 *   carries them, and a message that carried one (a command's default payload does) could exceed
 *   the broker's limit, which no retry fixes.
 *
 * Errors are ValidationError (INVALID_ARGUMENT) naming the field, with the path inside the JSON.
 */

/** The default of `limits.maxPayloadBytes`: well under Kafka's 1 MB message.max.bytes. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;

/** `\u0000`, a high surrogate not followed by a low one, or a low one not preceded by a high one (per UTF-16 unit: no `u` flag). */
// eslint-disable-next-line no-control-regex -- \u0000 is exactly what is looked for
const BAD = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Refuses bad text anywhere in `value` (strings and keys) and a serialised size over `maxBytes`. */
export function checkPayload(value: unknown, field: string, maxBytes: number): void {
  checkText(value, field);
  checkSize(value, field, maxBytes);
}

/** The size check alone, on JSON text already at hand (e.g. a gRPC `*_json` field before it is parsed). */
export function checkJsonTextSize(text: string, field: string, maxBytes: number): void {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: most texts are decided without counting.
  if (text.length * 3 <= maxBytes) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw tooLarge(field, bytes, maxBytes);
}

/** Bad text in a string field (an error message, an idempotency key). */
export function checkText(value: unknown, field: string): void {
  const at = badTextAt(value, field);
  if (at) throw new ValidationError(at.path, `contains ${at.what}, which the saga store cannot keep (JSON text must be valid Unicode without \\u0000)`);
}

function checkSize(value: unknown, field: string, maxBytes: number): void {
  if (value === undefined) return;
  const text = JSON.stringify(value);
  if (text !== undefined) checkJsonTextSize(text, field, maxBytes);
}

function tooLarge(field: string, bytes: number, maxBytes: number): ValidationError {
  return new ValidationError(field, `${bytes} bytes of JSON, over the limit of ${maxBytes} bytes (limits.maxPayloadBytes)`);
}

/** The first string or key (depth first) with bad text, and its path, e.g. `payload.items[2].name`. */
function badTextAt(value: unknown, path: string): { path: string; what: string } | undefined {
  if (typeof value === 'string') {
    const m = BAD.exec(value);
    return m ? { path, what: describe(m[0]) } : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = badTextAt(value[i], `${path}[${i}]`);
      if (at) return at;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    const m = BAD.exec(key);
    if (m) return { path: `${path} (a key)`, what: describe(m[0]) };
    const at = badTextAt(v, /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);
    if (at) return at;
  }
  return undefined;
}

function describe(char: string): string {
  const code = char.charCodeAt(0);
  return code === 0 ? '\\u0000' : `a lone surrogate \\u${code.toString(16)}`;
}
