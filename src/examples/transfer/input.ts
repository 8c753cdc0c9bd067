import { ValidationError } from '../../engine/errors';

export interface TransferInput {
  /** The account debited. */
  from: string;
  /** The account credited once the gateway confirms. */
  to: string;
  /** In minor units (e.g. cents): a positive integer. */
  amount: number;
  /** How long the saga waits for the gateway's webhook before it gives up and refunds the debit. */
  webhookTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000;
/** A day: past the saga's deadline (saga.asyncDeadlineMs) the saga is compensated anyway. */
export const MAX_WEBHOOK_TIMEOUT_MS = 86_400_000;
const MAX_ACCOUNT = 100;

/** Validates a Transfer saga's input (StartSaga's input_json); errors name the field. */
export function parseTransferInput(raw: unknown): TransferInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('input', 'must be a JSON object');
  const req = raw as Record<string, unknown>;
  const from = account(req.from, 'from');
  const to = account(req.to, 'to');
  if (to === from) throw new ValidationError('to', 'must differ from from');
  const amount = req.amount;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) throw new ValidationError('amount', 'must be a positive integer (minor units, e.g. cents)');
  const webhookTimeoutMs = req.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  if (typeof webhookTimeoutMs !== 'number' || !Number.isSafeInteger(webhookTimeoutMs) || webhookTimeoutMs < 1 || webhookTimeoutMs > MAX_WEBHOOK_TIMEOUT_MS) {
    throw new ValidationError('webhookTimeoutMs', `must be an integer between 1 and ${MAX_WEBHOOK_TIMEOUT_MS}`);
  }
  return { from, to, amount, webhookTimeoutMs };
}

function account(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ValidationError(field, 'required: a non-empty account name');
  if (value.length > MAX_ACCOUNT) throw new ValidationError(field, `at most ${MAX_ACCOUNT} characters`);
  return value;
}
