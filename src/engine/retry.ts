import { errorCode, OrchestratorError } from './errors';

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  /** 0..1: the backoff is spread by up to this fraction either way, so retries do not march in step. */
  jitter: number;
}

/**
 * Steps: about 26 s of retries (200 ms doubling up to 5 s), within the saga's deadline: enough to
 * span an upstream's restart or deploy and a channel's reconnect.
 */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 10, initialBackoffMs: 200, maxBackoffMs: 5_000, multiplier: 2, jitter: 0.2 };

/**
 * Compensations: about 53 minutes (500 ms doubling up to a minute, 60 attempts), on durable timers,
 * before the saga is COMPENSATION_FAILED and waits for a human (RetryCompensation).
 */
export const DEFAULT_COMPENSATION: RetryPolicy = { maxAttempts: 60, initialBackoffMs: 500, maxBackoffMs: 60_000, multiplier: 2, jitter: 0.2 };

/** Wait before attempt `attempt + 1`, after `attempt` failed ones (attempt >= 1). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (attempt - 1));
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/**
 * Whether a step failure is worth another attempt: errors that say so (upstream UNAVAILABLE,
 * DEADLINE_EXCEEDED, a step timeout). A refusal (INVALID_ARGUMENT, FAILED_PRECONDITION, …) or an
 * error the node marks non-retryable goes straight to compensation. Unknown errors are not retried.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof OrchestratorError || (err as { retryable?: unknown } | null)?.retryable !== undefined) {
    return (err as { retryable?: unknown }).retryable === true;
  }
  return ['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(errorCode(err));
}
