import { ValidationError } from '../../engine/errors';
import { FACTORY_MAX_DELAY_MS as MAX_DELAY_MS } from './clients';

export interface HammerInput {
  headType: string;
  handleSize: string;
  /** 'hammer': the factory refuses to assemble the hammer (FAILED_PRECONDITION), and the saga is compensated. */
  failAt: '' | 'hammer';
  /** How long each factory takes to make its part. */
  delayMs: number;
}

const MAX_TEXT = 100;

/** Validates a Hammer saga's input (StartSaga's input_json); errors name the field. */
export function parseHammerInput(raw: unknown): HammerInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('input', 'must be a JSON object');
  const req = raw as Record<string, unknown>;
  const failAt = req.failAt ?? '';
  if (failAt !== '' && failAt !== 'hammer') throw new ValidationError('failAt', 'must be "" or "hammer"');
  const delayMs = req.delayMs ?? 0;
  if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw new ValidationError('delayMs', `must be an integer between 0 and ${MAX_DELAY_MS}`);
  }
  return { headType: text(req.headType, 'headType'), handleSize: text(req.handleSize, 'handleSize'), failAt, delayMs };
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ValidationError(field, 'required: a non-empty string');
  if (value.length > MAX_TEXT) throw new ValidationError(field, `at most ${MAX_TEXT} characters`);
  return value;
}
