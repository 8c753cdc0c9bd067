import { expect } from 'chai';
import { ValidationError } from '../../src/engine/errors';
import { jsonField, jsonObjectField, required } from '../../src/grpc/fields';
import { sagaToProto } from '../../src/grpc/saga-proto';
import type { SagaSnapshot } from '../../src/engine/saga';

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('request fields at the gRPC edge', () => {
  it('a required field refuses the empty string (proto3 unset), naming the field', () => {
    expect(required('x', 'event')).to.equal('x');
    expect(problem(() => required('', 'event'))).to.equal('event: required');
  });

  it('a JSON field parses, defaults when empty, and refuses what is not JSON', () => {
    expect(jsonField('{"a":[1,2]}', 'input_json', {})).to.deep.equal({ a: [1, 2] });
    expect(jsonField('', 'input_json', {})).to.deep.equal({});
    expect(jsonField('', 'output_json', null)).to.equal(null);
    expect(jsonField('0', 'output_json', null)).to.equal(0);
    expect(problem(() => jsonField('{oops', 'input_json', {}))).to.equal('input_json: must be JSON');
  });

  it('an object field refuses arrays, null and scalars', () => {
    expect(jsonObjectField('{"ok":true}', 'payload_json')).to.deep.equal({ ok: true });
    expect(jsonObjectField('', 'payload_json')).to.deep.equal({});
    for (const bad of ['[1]', 'null', '"s"', '3']) expect(problem(() => jsonObjectField(bad, 'payload_json'))).to.equal('payload_json: must be a JSON object');
  });
});

describe('sagaToProto', () => {
  const saga: SagaSnapshot = {
    requestId: 'r1', facade: 'F', version: 2, mode: 'async', status: 'RUNNING', revision: 3, input: { a: 1 },
    steps: [{ name: 'approve', status: 'WAITING', attempts: 1, compensationAttempts: 0 }],
    history: [], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:01.000Z',
  };

  it('maps the graph: visits with statuses and times, waits with their deadline, the Mermaid text', () => {
    const p = sagaToProto(saga, {
      nodes: [
        { name: 'approve', kind: 'race', visits: [{ visit: 1, status: 'WAITING', attempts: 1, startedAt: '2026-01-01T00:00:00.500Z', wakeAt: '2026-01-02T00:00:00.000Z' }] },
        { name: 'reject', kind: 'step', visits: [{ visit: 2, status: 'SKIPPED', attempts: 0, output: { n: 0 }, error: 'e' }] },
      ],
      waiting: [{ node: 'approve', events: ['approved', 'rejected'], until: '2026-01-02T00:00:00.000Z' }, { node: 'w', events: ['x'] }],
      mermaid: 'flowchart LR',
    });
    expect(p.steps).to.deep.equal([{ name: 'approve', status: 'STEP_WAITING', attempts: 1, compensation_attempts: 0, output_json: '', error: '' }]);
    expect(p.nodes).to.deep.equal([
      { name: 'approve', kind: 'race', visits: [{ visit: 1, status: 'STEP_WAITING', attempts: 1, output_json: '', error: '', started_at: '2026-01-01T00:00:00.500Z', ended_at: '', wake_at: '2026-01-02T00:00:00.000Z' }] },
      { name: 'reject', kind: 'step', visits: [{ visit: 2, status: 'STEP_SKIPPED', attempts: 0, output_json: '{"n":0}', error: 'e', started_at: '', ended_at: '', wake_at: '' }] },
    ]);
    expect(p.waiting).to.deep.equal([{ node: 'approve', events: ['approved', 'rejected'], until: '2026-01-02T00:00:00.000Z' }, { node: 'w', events: ['x'], until: '' }]);
    expect(p.mermaid).to.equal('flowchart LR');
  });

  it('leaves the graph empty without a description (ListSagas, a facade this instance lacks)', () => {
    expect(sagaToProto(saga)).to.deep.include({ nodes: [], waiting: [], mermaid: '', input_json: '{"a":1}' });
  });
});
