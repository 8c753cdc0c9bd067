import { expect } from 'chai';
import { configSchema } from '../../src/config/schema';
import { loadConfig } from '../../src/config/load';
import { ValidationError } from '../../src/engine/errors';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { park } from '../../src/examples/park';
import { PARK_SLEEP, parkSleepFacade, parseParkSleepInput } from '../../src/examples/park/facade';
import { MemorySagaStore } from '../../src/store/memory-store';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { ended } from '../helpers/instances';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('park example (the park bench\'s ParkSleep)', () => {
  const registered = (examples: ReturnType<typeof configSchema.parse>['examples']) => {
    const registry = new FacadeRegistry();
    park.register(registry, { upstreams: configSchema.parse({}).upstreams, examples, log: silentLogger });
    return registry.find(PARK_SLEEP);
  };

  it('is registered only with examples.park.enabled, which OCH_PARK_EXAMPLE turns on', () => {
    expect(registered(configSchema.parse({}).examples)).to.equal(undefined);
    const on = loadConfig(path.join(ROOT, 'app.yaml'), { OCH_PARK_EXAMPLE: 'true' });
    expect(on.examples.park.enabled).to.equal(true);
    expect(registered(on.examples)?.name).to.equal(PARK_SLEEP);
  });

  it('takes a delay in ms, refusing anything else by naming delayMs', () => {
    expect(parseParkSleepInput({ delayMs: 0 })).to.deep.equal({ delayMs: 0 });
    for (const bad of [{}, { delayMs: -1 }, { delayMs: 1.5 }, { delayMs: '10' }]) {
      expect(() => parseParkSleepInput(bad)).to.throw(ValidationError).with.property('field', 'delayMs');
    }
    expect(() => parseParkSleepInput([])).to.throw(ValidationError).with.property('field', 'input');
  });

  it('parks on its sleep until it is due, then completes', async () => {
    const store = new MemorySagaStore();
    const transport = new MemoryTransport(ALL_TOPICS, silentLogger);
    const orchestrator = new Orchestrator({
      registry: new FacadeRegistry().register(parkSleepFacade()), store, transport, logger: silentLogger, podId: 'one', outcomeTopic: TOPICS.sagaOutcomes.name,
      options: { timerPollMs: 10 },
    });
    await orchestrator.start();
    try {
      await orchestrator.startAsync(PARK_SLEEP, 'p1', { delayMs: 200 });
      const saga = await ended(store, 'p1');
      expect(saga.status).to.equal('COMPLETED');
      const parkedUntil = saga.history.find((e) => e.type === 'STEP_WAITING' && e.step === 'sleep')?.detail?.match(/until (\S+)$/)?.[1];
      const woke = saga.history.find((e) => e.type === 'STEP_SUCCEEDED' && e.step === 'sleep')?.at;
      expect(Date.parse(woke!)).to.be.at.least(Date.parse(parkedUntil!));
    } finally {
      orchestrator.stop();
      await transport.close();
    }
  });
});
