import { expect } from 'chai';
import { describeFacade } from '../../src/engine/describe';
import { fakeFacade, fakeStep, type Journal } from '../helpers/fake-facade';

describe('describeFacade (ListFacades)', () => {
  const journal: Journal = { calls: [] };

  it('lists the nodes in order, each after the one before, with topic and whether it can be undone', () => {
    const steps = [fakeStep('reserve', journal, { topic: 't.reserve' }), fakeStep('charge', journal, { topic: 't.charge', noCompensation: true })];
    const d = describeFacade(fakeFacade('Booking', 'async', steps, 'rb'));
    expect(d).to.deep.include({ name: 'Booking', mode: 'async', version: 1 });
    expect(d.nodes).to.deep.equal([
      { name: 'reserve', kind: 'step', after: [], topic: 't.reserve', compensable: true },
      { name: 'charge', kind: 'step', after: ['reserve'], topic: 't.charge', compensable: false },
    ]);
  });

  it('draws the graph as a Mermaid flowchart from start to end, quoting names Mermaid would read as syntax', () => {
    const d = describeFacade(fakeFacade('Odd', 'sync', [fakeStep('a "b"', journal), fakeStep('c-->d', journal)], 'rb'));
    expect(d.mermaid).to.equal([
      'flowchart LR',
      '  start(("start"))',
      '  n0["a #quot;b#quot;"]',
      '  n1["c-->d"]',
      '  done(("end"))',
      '  start --> n0',
      '  n0 --> n1',
      '  n1 --> done',
    ].join('\n'));
  });
});
