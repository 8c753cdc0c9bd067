import { StepError, ValidationError } from '../../src/engine/errors';
import type { FacadeDefinition, FacadeMode, StepDefinition } from '../../src/engine/facade';
import { sequence } from '../../src/engine/graph';

export interface Journal {
  /** Every run and compensation, in the order they happened: "run:a", "undo:a". */
  calls: string[];
  /** What each compensation was given as the step's output. */
  undoOutputs?: Record<string, unknown>;
  /** When each run attempt started (ms), by step. */
  runAt?: Record<string, number[]>;
  /** The same as `calls`, by request id. */
  byRequest?: Record<string, string[]>;
}

export interface FakeStepOptions {
  /** Fails this many times before succeeding (Infinity: always). */
  failRuns?: number;
  failCompensations?: number;
  topic?: string;
  retryable?: boolean;
  /** Each run takes this long (honouring its AbortSignal when `honourSignal`). */
  runMs?: number;
  /** Each run first waits for this (ignoring its AbortSignal): a step held until the test lets it go, or forever. */
  gate?: Promise<unknown>;
  honourSignal?: boolean;
  retry?: StepDefinition['retry'];
  timeoutMs?: number;
  /** No compensate() at all. */
  noCompensation?: boolean;
}

/** A step that records what it does and fails on demand. */
export function fakeStep(name: string, journal: Journal, opts: FakeStepOptions = {}): StepDefinition<{ n: number }, { step: string; n: number }> {
  let runFailures = 0;
  let undoFailures = 0;
  const step: StepDefinition<{ n: number }, { step: string; n: number }> = {
    name,
    topic: opts.topic,
    retry: opts.retry,
    timeoutMs: opts.timeoutMs,
    async run(ctx) {
      journal.calls.push(`run:${name}`);
      ((journal.byRequest ??= {})[ctx.requestId] ??= []).push(`run:${name}`);
      (journal.runAt ??= {})[name] = [...(journal.runAt[name] ?? []), Date.now()];
      if (opts.gate) await opts.gate;
      if (opts.runMs) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, opts.runMs);
          if (opts.honourSignal) ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('aborted')); }, { once: true });
        });
      }
      if (runFailures < (opts.failRuns ?? 0)) {
        runFailures++;
        throw new StepError(opts.retryable ? 'UNAVAILABLE' : 'FAILED_PRECONDITION', `${name} refused`, opts.retryable ?? false);
      }
      return { step: name, n: ctx.input.n };
    },
    async compensate(ctx) {
      journal.calls.push(`undo:${name}`);
      ((journal.byRequest ??= {})[ctx.requestId] ??= []).push(`undo:${name}`);
      (journal.undoOutputs ??= {})[name] = ctx.output;
      if (undoFailures < (opts.failCompensations ?? 0)) {
        undoFailures++;
        throw new Error(`${name} compensation broke`);
      }
    },
  };
  if (opts.noCompensation) delete step.compensate;
  return step;
}

export function fakeFacade(name: string, mode: FacadeMode, steps: StepDefinition<{ n: number }, { step: string; n: number }>[], rollbackTopic: string): FacadeDefinition<{ n: number }, string[]> {
  return {
    name,
    version: 1,
    mode,
    nodes: sequence(...steps),
    rollbackTopic,
    parseInput(raw) {
      const n = (raw as { n?: unknown } | undefined)?.n;
      if (typeof n !== 'number') throw new ValidationError('n', 'must be a number');
      return { n };
    },
    result: (results) => Object.keys(results),
  };
}
