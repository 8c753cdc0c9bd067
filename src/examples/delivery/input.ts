import { ValidationError } from '../../engine/errors';

export interface DeliveryInput {
  /** What the order contains (e.g. SKUs): reserved at checkout, released if the order is not paid. */
  items: string[];
  /** How long the order waits for payment_made (or payment_cancelled) before it expires and is compensated. */
  paymentTimeoutMs: number;
}

/** 15 minutes to pay, unless the input says otherwise. */
export const DEFAULT_PAYMENT_TIMEOUT_MS = 900_000;
/** A day at most. */
export const MAX_PAYMENT_TIMEOUT_MS = 86_400_000;
export const MAX_ITEMS = 100;
const MAX_ITEM = 100;

/** Validates an OrderDelivery saga's input (StartSaga's input_json); errors name the field. */
export function parseDeliveryInput(raw: unknown): DeliveryInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('input', 'must be a JSON object');
  const req = raw as Record<string, unknown>;
  const items = req.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_ITEMS) throw new ValidationError('items', `required: an array of 1 to ${MAX_ITEMS} items`);
  items.forEach((item, i) => {
    if (typeof item !== 'string' || item.trim() === '' || item.length > MAX_ITEM) throw new ValidationError(`items[${i}]`, `must be a non-empty string of at most ${MAX_ITEM} characters (e.g. a SKU)`);
  });
  const paymentTimeoutMs = req.paymentTimeoutMs ?? DEFAULT_PAYMENT_TIMEOUT_MS;
  if (typeof paymentTimeoutMs !== 'number' || !Number.isSafeInteger(paymentTimeoutMs) || paymentTimeoutMs < 1 || paymentTimeoutMs > MAX_PAYMENT_TIMEOUT_MS) {
    throw new ValidationError('paymentTimeoutMs', `must be an integer between 1 and ${MAX_PAYMENT_TIMEOUT_MS}`);
  }
  return { items: items as string[], paymentTimeoutMs };
}
