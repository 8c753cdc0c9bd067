import { ValidationError } from '../../engine/errors';

export interface BookingInput {
  productId: number;
  count: number;
  faultInject: boolean;
  delayMs: number;
}

const MAX_DELAY_MS = 60_000;

/** Validates a pb.BookingRequest; errors name the proto field. int64 arrive as decimal strings. */
export function parseBookingInput(raw: unknown): BookingInput {
  const req = (raw ?? {}) as Record<string, unknown>;
  const productId = int(req.ProductID, 'ProductID');
  const count = int(req.Count, 'Count');
  const delayMs = int(req.DelayMs, 'DelayMs');
  if (productId <= 0) throw new ValidationError('ProductID', 'must be > 0');
  if (count < 0) throw new ValidationError('Count', 'must be >= 0');
  if (delayMs < 0 || delayMs > MAX_DELAY_MS) throw new ValidationError('DelayMs', `must be between 0 and ${MAX_DELAY_MS}`);
  return { productId, count, faultInject: req.FaultInject === true, delayMs };
}

function int(value: unknown, field: string): number {
  const n = typeof value === 'string' && value !== '' ? Number(value) : value ?? 0;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new ValidationError(field, 'must be an integer');
  return n;
}
