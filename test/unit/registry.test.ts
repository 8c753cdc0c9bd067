import { expect } from 'chai';
import { AlreadyExistsError, NotFoundError, OrchestratorError } from '../../src/engine/errors';
import { FacadeRegistry } from '../../src/engine/registry';
import { fakeFacade, fakeStep } from '../helpers/fake-facade';

describe('FacadeRegistry', () => {
  const journal = { calls: [] };

  it('refuses a second facade with the same name', () => {
    const registry = new FacadeRegistry().register(fakeFacade('F', 'sync', [fakeStep('a', journal)], 'rb'));
    expect(() => registry.register(fakeFacade('F', 'sync', [fakeStep('b', journal)], 'rb'))).to.throw(AlreadyExistsError, 'facade F version 1 already exists');
  });

  it('answers NotFoundError for an unknown facade', () => {
    expect(() => new FacadeRegistry().get('nope')).to.throw(NotFoundError, 'facade nope not found');
  });

  it('rejects an async step without a topic and duplicate step names at registration', () => {
    const registry = new FacadeRegistry();
    expect(() => registry.register(fakeFacade('A', 'async', [fakeStep('a', journal)], 'rb'))).to.throw(/async step a has no topic/);
    expect(() => registry.register(fakeFacade('B', 'sync', [fakeStep('a', journal), fakeStep('a', journal)], 'rb'))).to.throw(/node a is declared twice/);
    expect(() => registry.register(fakeFacade('C', 'sync', [], 'rb'))).to.throw(/has no nodes/);
    expect(registry.all()).to.be.empty;
  });

  it('lists each consumed topic once: async step topics and rollback topics', () => {
    const registry = new FacadeRegistry()
      .register(fakeFacade('S', 'sync', [fakeStep('a', journal)], 'rb.sync'))
      .register(fakeFacade('A', 'async', [fakeStep('a', journal, { topic: 't.a' }), fakeStep('b', journal, { topic: 't.b' })], 'rb.async'))
      .register(fakeFacade('A2', 'async', [fakeStep('a', journal, { topic: 't.a' })], 'rb.async'));
    expect(registry.consumedTopics().sort()).to.deep.equal(['rb.async', 'rb.sync', 't.a', 't.b']);
  });

  it('keeps several versions of one facade: the newest by default, any one by number', () => {
    const registry = new FacadeRegistry();
    for (const version of [2, 1]) registry.register({ ...fakeFacade('V', 'sync', [fakeStep('a', journal)], 'rb'), version });
    expect(registry.get('V').version).to.equal(2);
    expect(registry.get('V', 1).version).to.equal(1);
    expect(registry.versions('V')).to.deep.equal([1, 2]);
    expect(() => registry.get('V', 3)).to.throw(OrchestratorError, 'facade V version 3 not found (this instance has versions 1, 2)');
  });
});
