import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import {
  AlreadyExistsError, IllegalTransitionError, NotFoundError, OrchestratorError, PoisonMessageError, SagaAbortedError, ValidationError, type ErrorCode,
} from '../../src/engine/errors';
import { toGrpcError } from '../../src/grpc/status';

describe('engine errors to gRPC status (one mapping)', () => {
  const cases: [string, Error, grpc.status][] = [
    ['ValidationError', new ValidationError('ProductID', 'must be > 0'), grpc.status.INVALID_ARGUMENT],
    ['NotFoundError', new NotFoundError('saga x'), grpc.status.NOT_FOUND],
    ['AlreadyExistsError', new AlreadyExistsError('saga x'), grpc.status.ALREADY_EXISTS],
    ['IllegalTransitionError', new IllegalTransitionError('saga x', 'COMPLETED', 'RUNNING'), grpc.status.FAILED_PRECONDITION],
    ['a saga rolled back after a refusal', new SagaAbortedError('r', 'createPayment', 'FAILED_PRECONDITION', 'declined'), grpc.status.ABORTED],
    ['a saga rolled back because a dependency was down', new SagaAbortedError('r', 'createOrder', 'UNAVAILABLE', 'connect refused'), grpc.status.UNAVAILABLE],
    ['UNAVAILABLE', new OrchestratorError('UNAVAILABLE', 'shutting down'), grpc.status.UNAVAILABLE],
    ['a poison message', new PoisonMessageError('bad'), grpc.status.INTERNAL],
    ['a plain Error', new Error('bug'), grpc.status.INTERNAL],
  ];
  for (const [what, err, code] of cases) {
    it(`${what} -> ${grpc.status[code]}`, () => {
      expect(toGrpcError(err).code).to.equal(code);
    });
  }

  it('every engine error code has a status', () => {
    const codes: ErrorCode[] = ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'SAGA_ABORTED', 'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'CANCELLED', 'ILLEGAL_TRANSITION', 'POISON_MESSAGE', 'INTERNAL'];
    for (const code of codes) expect(toGrpcError(new OrchestratorError(code, 'm')).code, code).to.be.a('number');
  });

  it('names the field for INVALID_ARGUMENT, the node for ABORTED, and returns the request id in trailers', () => {
    expect(toGrpcError(new ValidationError('Count', 'must be >= 0')).details).to.equal('Count: must be >= 0');
    const aborted = toGrpcError(new SagaAbortedError('r9', 'createPayment', 'FAILED_PRECONDITION', 'declined'), 'r9');
    expect(aborted.details).to.contain('createPayment').and.contain('declined');
    expect(aborted.metadata!.get('x-request-id')).to.deep.equal(['r9']);
  });
});
