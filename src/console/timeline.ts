import type { SagaEvent } from '../engine/saga';

export interface TimelineEntry extends SagaEvent {
  /** On an entry that ends an attempt, a compensation attempt or a wait: how long it took since it began. */
  durationMs?: number;
  /** What `durationMs` measures. */
  measured?: 'attempt' | 'wait' | 'compensation';
}

type Open = { at: number; measured: NonNullable<TimelineEntry['measured']> };

/** What begins something on a visit, and what ends it. */
const BEGINS: Readonly<Record<string, Open['measured']>> = { STEP_STARTED: 'attempt', STEP_WAITING: 'wait', COMPENSATION_STARTED: 'compensation' };
const ENDS: Readonly<Record<string, readonly Open['measured'][]>> = {
  STEP_SUCCEEDED: ['attempt', 'wait'],
  STEP_ATTEMPT_FAILED: ['attempt'],
  STEP_FAILED: ['attempt', 'wait'],
  // An external step runs, then waits for its reply: the attempt ends where the wait begins.
  STEP_WAITING: ['attempt'],
  COMPENSATION_SUCCEEDED: ['compensation'],
  COMPENSATION_FAILED: ['compensation'],
};

/**
 * A saga's history with durations: each visit's attempt, wait and compensation attempt is timed
 * from the entry that began it to the one that ended it, so an operator sees which step is slow.
 */
export function timelineOf(history: readonly SagaEvent[]): TimelineEntry[] {
  const open = new Map<string, Open>();
  return history.map((e) => {
    const entry: TimelineEntry = { ...e };
    if (!e.step) return entry;
    const at = Date.parse(e.at);
    const began = open.get(e.step);
    if (began && ENDS[e.type]?.includes(began.measured)) {
      entry.durationMs = at - began.at;
      entry.measured = began.measured;
      open.delete(e.step);
    }
    const begins = BEGINS[e.type];
    if (begins) open.set(e.step, { at, measured: begins });
    return entry;
  });
}
