import { ValidationError } from '../../engine/errors';
import type { FacadeDefinition } from '../../engine/facade';
import { TOPICS } from '../../../topics/topics';

/** The park bench's sleeping saga (bench/park.ts): one durable sleep, then done. */
export const PARK_SLEEP = 'ParkSleep';

export interface ParkSleepInput {
  /** How long the saga sleeps, from when it parks. */
  delayMs: number;
}

/** A week: past the saga's deadline (saga.asyncDeadlineMs) the saga is compensated anyway. */
const MAX_DELAY_MS = 7 * 86_400_000;

export function parseParkSleepInput(raw: unknown): ParkSleepInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('input', 'must be a JSON object');
  const delayMs = (raw as Record<string, unknown>).delayMs;
  if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw new ValidationError('delayMs', `must be an integer between 0 and ${MAX_DELAY_MS}`);
  }
  return { delayMs };
}

/**
 * No step: a timer is all the saga is, so the bench measures the timers (their claim, lateness and
 * cost while parked) and nothing an upstream adds. Nothing to compensate; the rollback topic is
 * declared all the same (a saga past its deadline is rolled back through it).
 */
export function parkSleepFacade(): FacadeDefinition<ParkSleepInput, null> {
  return {
    name: PARK_SLEEP,
    version: 1,
    mode: 'async',
    nodes: [{ kind: 'sleep', name: 'sleep', delayMs: (input) => input.delayMs }],
    rollbackTopic: TOPICS.parkRollback.name,
    parseInput: parseParkSleepInput,
    result: () => null,
  };
}
