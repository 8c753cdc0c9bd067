import { ValidationError } from '../../engine/errors';

export interface BargainInput {
  clientId: string;
  from: string;
  to: string;
  /** What the client offers to pay: the price of a driver who accepts the order as it is. */
  suggestedPrice: number;
  /** How many drivers each dispatch notifies. */
  batchSize: number;
  /** How many batches are dispatched before the order is given up (compensated). */
  maxBatches: number;
  /** How long a batch has to accept or offer a price before the next batch is notified. */
  driverTimeoutMs: number;
  /** How long the client has to accept an offer before the order is cancelled. */
  clientTimeoutMs: number;
}

export const BARGAIN_DEFAULTS = { batchSize: 5, maxBatches: 3, driverTimeoutMs: 30_000, clientTimeoutMs: 60_000 } as const;
export const BARGAIN_LIMITS = { batchSize: 50, maxBatches: 20, timeoutMs: 600_000 } as const;
const MAX_TEXT = 200;

function text(req: Record<string, unknown>, field: 'clientId' | 'from' | 'to'): string {
  const v = req[field];
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_TEXT) throw new ValidationError(field, `required: a non-empty string of at most ${MAX_TEXT} characters`);
  return v;
}

function integer(req: Record<string, unknown>, field: keyof typeof BARGAIN_DEFAULTS, max: number): number {
  const v = req[field] ?? BARGAIN_DEFAULTS[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) throw new ValidationError(field, `must be an integer between 1 and ${max}`);
  return v;
}

/** Validates a Bargain saga's input (StartSaga's input_json); errors name the field. */
export function parseBargainInput(raw: unknown): BargainInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('input', 'must be a JSON object');
  const req = raw as Record<string, unknown>;
  const suggestedPrice = req.suggestedPrice;
  if (typeof suggestedPrice !== 'number' || !Number.isFinite(suggestedPrice) || suggestedPrice <= 0) throw new ValidationError('suggestedPrice', 'required: a positive number');
  return {
    clientId: text(req, 'clientId'),
    from: text(req, 'from'),
    to: text(req, 'to'),
    suggestedPrice,
    batchSize: integer(req, 'batchSize', BARGAIN_LIMITS.batchSize),
    maxBatches: integer(req, 'maxBatches', BARGAIN_LIMITS.maxBatches),
    driverTimeoutMs: integer(req, 'driverTimeoutMs', BARGAIN_LIMITS.timeoutMs),
    clientTimeoutMs: integer(req, 'clientTimeoutMs', BARGAIN_LIMITS.timeoutMs),
  };
}
