import { expect } from 'chai';
import { InvalidArgumentError } from 'commander';
import { address, integer, json, sagaStatus, timestamp } from '../../src/cli/args';
import { duration, table } from '../../src/cli/render';
import type { Saga, Visit } from '../../src/cli/types';
import { pathOf, sagaView } from '../../src/cli/views';

const refused = (fn: () => unknown, message: RegExp) => {
  expect(fn).to.throw(InvalidArgumentError, message);
};

describe('och: option parsers', () => {
  it('times: RFC 3339, or a duration before now', () => {
    const now = () => Date.parse('2026-12-03T12:00:00Z');
    expect(timestamp(now)('15m')).to.equal('2026-12-03T11:45:00.000Z');
    expect(timestamp(now)('2d')).to.equal('2026-12-01T12:00:00.000Z');
    expect(timestamp(now)('2026-12-03T10:00:00+02:00')).to.equal('2026-12-03T08:00:00.000Z');
    expect(timestamp(now)('2026-12-03')).to.equal('2026-12-03T00:00:00.000Z');
    for (const bad of ['yesterday', '1', '15 m', '2026-13-45T00:00:00Z']) refused(() => timestamp(now)(bad), /RFC 3339/);
  });

  it('statuses in any case, with - or _', () => {
    expect(sagaStatus('compensation-failed')).to.equal('COMPENSATION_FAILED');
    expect(sagaStatus('Running')).to.equal('RUNNING');
    refused(() => sagaStatus('FAILED'), /one of RUNNING, COMPLETED, COMPENSATING, COMPENSATED, COMPENSATION_FAILED/);
  });

  it('JSON inline or from @FILE, compacted; objects where an object is due', () => {
    const files: Record<string, string> = { 'in.json': '{ "a": [1, 2] }\n' };
    const read = (f: string) => {
      if (!(f in files)) throw new Error('ENOENT');
      return files[f];
    };
    expect(json(false, read)('@in.json')).to.equal('{"a":[1,2]}');
    expect(json(false, read)('[1]')).to.equal('[1]');
    refused(() => json(true, read)('[1]'), /expected a JSON object/);
    refused(() => json(false, read)('{"a":'), /^not JSON/);
    refused(() => json(false, read)('@missing.json'), /cannot read missing.json: ENOENT/);
  });

  it('addresses and integers', () => {
    expect(address('orchestrator.ns.svc:10000')).to.equal('orchestrator.ns.svc:10000');
    expect(address('[::1]:10000')).to.equal('[::1]:10000');
    for (const bad of ['10000', 'host', 'http://host:1', 'host:port']) refused(() => address(bad), /host:port/);
    expect(integer(1, 1000)('50')).to.equal(50);
    for (const bad of ['0', '1001', '1.5', '-1', 'ten']) refused(() => integer(1, 1000)(bad), /from 1 to 1000/);
  });
});

describe('och: text output', () => {
  it('tables pad columns; on a terminal the last column is cut to the width', () => {
    const rows = [['a', 'COMPLETED', 'short'], ['bbbb', 'COMPENSATED', 'x'.repeat(50)]];
    expect(table(['ID', 'STATUS', 'ERROR'], rows, { color: false })).to.equal([
      'ID    STATUS       ERROR',
      'a     COMPLETED    short',
      `bbbb  COMPENSATED  ${'x'.repeat(50)}`,
    ].join('\n'));
    const cut = table(['ID', 'STATUS', 'ERROR'], rows, { color: true, width: 40 }, 1).split('\n');
    expect(cut[2]).to.equal(`bbbb  \x1b[33mCOMPENSATED\x1b[0m  ${'x'.repeat(20)}…`);
    expect(cut[1]).to.contain('\x1b[32mCOMPLETED  \x1b[0m');
  });

  it('durations', () => {
    expect(duration('2026-12-03T12:00:00.000Z', '2026-12-03T12:00:00.250Z')).to.equal('250 ms');
    expect(duration('2026-12-03T12:00:00.000Z', '2026-12-03T12:00:12.340Z')).to.equal('12.3 s');
    expect(duration('2026-12-03T12:00:00.000Z', '2026-12-03T12:04:05.000Z')).to.equal('4 min 5 s');
    expect(duration('2026-12-03T12:00:00.000Z', '')).to.equal('');
  });

  const visit = (n: number, status: string, started: string, ended = ''): Visit => ({
    visit: n, status, attempts: started ? 1 : 0, output_json: '', error: '', started_at: started, ended_at: ended, wake_at: '',
  });
  const saga: Saga = {
    request_id: 'r1', facade: 'Loop', version: 2, status: 'RUNNING', input_json: '{}', output_json: '', error: '', error_code: '',
    created_at: '2026-12-03T12:00:00.000Z', updated_at: '2026-12-03T12:00:03.000Z', mode: 'async', deadline: '', owner: 'pod/1', revision: 3,
    history: [], mermaid: '', left_alone: '',
    nodes: [
      { name: 'check', kind: 'step', visits: [visit(1, 'SUCCEEDED', '2026-12-03T12:00:00.000Z', '2026-12-03T12:00:00.100Z'), visit(2, 'STEP_RUNNING', '2026-12-03T12:00:02.000Z')] },
      { name: 'pause', kind: 'sleep', visits: [visit(1, 'SUCCEEDED', '2026-12-03T12:00:01.000Z', '2026-12-03T12:00:02.000Z')] },
      { name: 'other', kind: 'step', visits: [visit(1, 'STEP_SKIPPED', '')] },
      { name: 'approve', kind: 'wait', visits: [] },
    ],
    waiting: [{ node: 'approve', events: ['approved', 'rejected'], until: '' }],
  };

  it('the path: visits in the order they started, a loop\'s later visits as node#N, skipped ones last', () => {
    expect(pathOf(saga).map((e) => e.label)).to.deep.equal(['check', 'pause', 'check#2', 'other']);
  });

  it('one saga as text: its fields, the path with statuses and durations, what it waits for', () => {
    const lines = sagaView(saga, { color: false }).split('\n');
    expect(lines.slice(0, 2)).to.deep.equal(['saga      r1  Loop v2 (async)', 'status    RUNNING']);
    expect(lines).to.include.members([
      '  1  check    step   SUCCEEDED  1         2026-12-03T12:00:00.000Z  100 ms  -',
      '  3  check#2  step   RUNNING    1         2026-12-03T12:00:02.000Z  -       -',
      '  4  other    step   SKIPPED    0         -                         -       -',
      'waiting for',
      '  approve: event approved or rejected, no timeout',
    ]);
  });
});
