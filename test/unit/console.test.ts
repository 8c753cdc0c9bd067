import { expect } from 'chai';
import { NotFoundError, OrchestratorError, StoreUnavailableError, ValidationError } from '../../src/engine/errors';
import { eventOf, filterOf } from '../../src/console/api';
import { httpFailureOf } from '../../src/console/errors';
import { timelineOf } from '../../src/console/timeline';
import { HttpError } from '../../src/http/server';
import type { SagaEvent } from '../../src/engine/saga';

const at = (ms: number) => new Date(Date.UTC(2026, 11, 1, 10, 0, 0, ms)).toISOString();

describe('console API', () => {
  describe('httpFailureOf: engine errors as HTTP statuses', () => {
    it('maps each kind of engine error to its status, naming the field of bad input', () => {
      expect(httpFailureOf(new ValidationError('status', 'unknown status X'))).to.deep.equal({ status: 400, body: { error: 'status: unknown status X', code: 'INVALID_ARGUMENT', field: 'status' } });
      expect(httpFailureOf(new NotFoundError('saga s1'))).to.deep.equal({ status: 404, body: { error: 'saga s1 not found', code: 'NOT_FOUND' } });
      expect(httpFailureOf(new OrchestratorError('FAILED_PRECONDITION', 'saga s1 is already COMPLETED')).status).to.equal(409);
      expect(httpFailureOf(new StoreUnavailableError('connection refused')).status).to.equal(503);
      expect(httpFailureOf(new OrchestratorError('RESOURCE_EXHAUSTED', 'queue full')).status).to.equal(429);
      expect(httpFailureOf(new HttpError(415, 'content-type: must be application/json'))).to.deep.equal({ status: 415, body: { error: 'content-type: must be application/json', code: 'HTTP' } });
    });

    it('anything that is not ours is a 500 that says so', () => {
      expect(httpFailureOf(new TypeError('x is undefined'))).to.deep.equal({ status: 500, body: { error: 'internal error: x is undefined', code: 'INTERNAL' } });
    });
  });

  describe('filterOf: the list query', () => {
    it('reads facade, status, the time range and paging; defaults to 20 a page', () => {
      expect(filterOf(new URLSearchParams('facade=Transfer&status=RUNNING&created_from=2026-12-01T10:00:00%2B01:00&page_token=abc'))).to.deep.equal({
        facade: 'Transfer', status: 'RUNNING', createdFrom: '2026-12-01T09:00:00.000Z', createdTo: undefined, pageSize: 20, pageToken: 'abc',
      });
    });

    it('refuses a bad value naming its field', () => {
      const refused = (query: string) => {
        try {
          filterOf(new URLSearchParams(query));
        } catch (err) {
          return (err as ValidationError).field;
        }
        throw new Error(`accepted ${query}`);
      };
      expect(refused('status=FAILED')).to.equal('status');
      expect(refused('created_to=yesterday')).to.equal('created_to');
      expect(refused('page_size=0')).to.equal('page_size');
      expect(refused('page_size=2.5')).to.equal('page_size');
      expect(refused('page_size=201')).to.equal('page_size');
    });
  });

  describe('eventOf: an event to send', () => {
    it('takes the event, an object payload ({} when absent) and an optional idempotency key', () => {
      expect(eventOf({ event: 'webhook', payload: { status: 'CONFIRMED' }, idempotency_key: 'k1' })).to.deep.equal({ event: 'webhook', payload: { status: 'CONFIRMED' }, idempotencyKey: 'k1' });
      expect(eventOf({ event: 'cancel' })).to.deep.equal({ event: 'cancel', payload: {} });
    });

    it('refuses a missing event, a payload that is not an object, an empty key', () => {
      expect(() => eventOf({ payload: {} })).to.throw(ValidationError, /^event: required/);
      expect(() => eventOf({ event: 'webhook', payload: ['CONFIRMED'] })).to.throw(ValidationError, 'payload: must be a JSON object');
      expect(() => eventOf({ event: 'webhook', payload: null })).to.throw(ValidationError, 'payload: must be a JSON object');
      expect(() => eventOf({ event: 'webhook', idempotency_key: '' })).to.throw(ValidationError, /^idempotency_key:/);
      expect(() => eventOf([])).to.throw(ValidationError, 'body: must be a JSON object');
    });
  });

  describe('timelineOf: the history with durations', () => {
    it('times each attempt, wait and compensation attempt from the entry that began it', () => {
      const history: SagaEvent[] = [
        { seq: 1, at: at(0), type: 'SAGA_STARTED' },
        { seq: 2, at: at(1), type: 'STEP_STARTED', step: 'pay', detail: 'attempt 1' },
        { seq: 3, at: at(41), type: 'STEP_ATTEMPT_FAILED', step: 'pay' },
        { seq: 4, at: at(250), type: 'STEP_STARTED', step: 'pay', detail: 'attempt 2' },
        { seq: 5, at: at(270), type: 'STEP_SUCCEEDED', step: 'pay' },
        { seq: 6, at: at(270), type: 'STEP_WAITING', step: 'webhook' },
        { seq: 7, at: at(1270), type: 'STEP_FAILED', step: 'webhook' },
        { seq: 8, at: at(1271), type: 'SAGA_COMPENSATING', step: 'webhook' },
        { seq: 9, at: at(1280), type: 'COMPENSATION_STARTED', step: 'pay' },
        { seq: 10, at: at(1300), type: 'COMPENSATION_SUCCEEDED', step: 'pay' },
      ];
      const timed = timelineOf(history).map((e) => [e.seq, e.measured, e.durationMs]);
      expect(timed).to.deep.equal([
        [1, undefined, undefined], [2, undefined, undefined], [3, 'attempt', 40], [4, undefined, undefined], [5, 'attempt', 20],
        [6, undefined, undefined], [7, 'wait', 1000], [8, undefined, undefined], [9, undefined, undefined], [10, 'compensation', 20],
      ]);
    });

    it('an external step: its attempt ends where its wait for the reply begins, which ends with the reply', () => {
      const timed = timelineOf([
        { seq: 1, at: at(0), type: 'STEP_STARTED', step: 'head#2' },
        { seq: 2, at: at(5), type: 'STEP_WAITING', step: 'head#2' },
        { seq: 3, at: at(505), type: 'STEP_SUCCEEDED', step: 'head#2' },
      ]).map((e) => [e.measured, e.durationMs]);
      expect(timed).to.deep.equal([[undefined, undefined], ['attempt', 5], ['wait', 500]]);
    });
  });
});
