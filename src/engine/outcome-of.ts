import { isErrorCode, SagaAbortedError } from './errors';
import type { SagaSnapshot } from './saga';

/** How a finished (or aborted) saga answers its caller. */
export function outcomeOf(saga: Readonly<SagaSnapshot>): unknown {
  if (saga.status === 'COMPLETED') return saga.output;
  const aborted = saga.history.findLast((e) => e.type === 'SAGA_COMPENSATING');
  const failedStep = aborted?.step ?? '';
  const cause = aborted?.detail ?? saga.error ?? '';
  throw new SagaAbortedError(saga.requestId, failedStep, isErrorCode(saga.errorCode) ? saga.errorCode : 'INTERNAL', cause);
}
