import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { StepError, ValidationError } from '../../src/engine/errors';
import type { CompensationContext, ExternalStepDefinition, StepDefinition } from '../../src/engine/facade';
import { createHammerClients, type HammerClients } from '../../src/examples/hammer/clients';
import { HAMMER, hammerFacade } from '../../src/examples/hammer/facade';
import { parseHammerInput, type HammerInput } from '../../src/examples/hammer/input';
import type { Factory, FactoryCall } from '../../src/examples/hammer/services/factory-service';
import { TOPICS } from '../../topics/topics';
import { nodeContext, serveFactory, type InProcessService } from '../helpers/demo-services';
import { call } from '../helpers/stack';
import { rejectionOf } from '../helpers/wait';

describe('hammer example: input', () => {
  it('fills failAt and delayMs', () => {
    expect(parseHammerInput({ headType: 'claw', handleSize: 'short' })).to.deep.equal({ headType: 'claw', handleSize: 'short', failAt: '', delayMs: 0 });
    expect(parseHammerInput({ headType: 'claw', handleSize: 'short', failAt: 'hammer', delayMs: 500 })).to.include({ failAt: 'hammer', delayMs: 500 });
  });

  const bad: [string, unknown, string][] = [
    ['no object', 'claw', 'input'],
    ['no headType', { handleSize: 'short' }, 'headType'],
    ['an empty handleSize', { headType: 'claw', handleSize: ' ' }, 'handleSize'],
    ['an unknown failAt', { headType: 'claw', handleSize: 'short', failAt: 'head' }, 'failAt'],
    ['a negative delayMs', { headType: 'claw', handleSize: 'short', delayMs: -1 }, 'delayMs'],
    ['a text delayMs', { headType: 'claw', handleSize: 'short', delayMs: '10' }, 'delayMs'],
  ];
  for (const [what, raw, field] of bad) {
    it(`rejects ${what}, naming ${field}`, () => {
      expect(() => parseHammerInput(raw)).to.throw(ValidationError).with.property('field', field);
    });
  }
});

describe('hammer example: the facade and its nodes against the demo factory', () => {
  let service: InProcessService<Factory>;
  let clients: HammerClients;
  const facade = () => hammerFacade(clients);
  const node = (name: string) => facade().nodes.find((n) => n.name === name)!;
  const input: HammerInput = { headType: 'claw', handleSize: 'short', failAt: '', delayMs: 0 };
  const makeHead = (requestId: string) => service.state.makeHead({ requestId, idempotencyKey: `${requestId}:head`, type: 'claw', delayMs: 0 }, new AbortController().signal);
  const undoHead = (ctx: CompensationContext<HammerInput, { headId: string }>) => (node('head') as ExternalStepDefinition<HammerInput, { headId: string }>).compensate!(ctx);
  const callsOf = (requestId: string): FactoryCall[] => service.state.calls().filter((c) => c.request_id === requestId);

  before(async () => {
    service = await serveFactory();
    clients = createHammerClients({ factory: service.address });
  });
  after(async () => {
    clients.close();
    await service.stop();
  });

  it('is the graph of the contract: head (external) and handle in parallel, then hammer; only head compensable', () => {
    const def = facade();
    expect([def.name, def.version, def.mode, def.rollbackTopic]).to.deep.equal([HAMMER, 1, 'async', TOPICS.hammerRollback.name]);
    expect(def.nodes.map((n) => [n.name, n.kind ?? 'step', n.after ?? []])).to.deep.equal([['head', 'external', []], ['handle', 'step', []], ['hammer', 'step', ['head', 'handle']]]);
    const head = node('head') as ExternalStepDefinition<HammerInput>;
    expect(head.topic).to.equal(TOPICS.hammerHeadCommands.name);
    expect(head.command!(nodeContext('r', 'head', { ...input, delayMs: 7 }))).to.deep.equal({ headType: 'claw', delayMs: 7 });
    expect([node('handle'), node('hammer')].map((n) => [(n as StepDefinition).topic, typeof (n as StepDefinition).compensate])).to.deep.equal([[TOPICS.hammerHandle.name, 'undefined'], [TOPICS.hammerHammer.name, 'undefined']]);
    expect(typeof head.compensate).to.equal('function');
    expect(def.result({ head: { headId: 'h' }, handle: { handleId: 'l' }, hammer: { hammerId: 'm' } })).to.deep.equal({ headId: 'h', handleId: 'l', hammerId: 'm' });
  });

  it('handle then hammer from both results; the factory records each with its interval', async () => {
    const head = await makeHead('n1');
    const handle = await (node('handle') as StepDefinition<HammerInput>).run(nodeContext('n1', 'handle', { ...input, delayMs: 30 }));
    expect(handle).to.deep.equal({ handleId: 'handle-1' });
    const hammer = await (node('hammer') as StepDefinition<HammerInput>).run(nodeContext('n1', 'hammer', input, { head: { headId: head.id }, handle }));
    expect(hammer).to.deep.equal({ hammerId: 'hammer-1' });
    const [, made, assembled] = callsOf('n1');
    expect(made).to.include({ method: 'MakeHandle', idempotency_key: 'n1:handle', handle_id: 'handle-1', error: '' });
    expect(made.ended_at_ms - made.started_at_ms).to.be.at.least(25);
    expect(assembled).to.include({ method: 'MakeHammer', head_id: head.id, handle_id: 'handle-1', hammer_id: 'hammer-1' });
    expect(assembled.started_at_ms).to.be.at.least(made.ended_at_ms);
  });

  it('failAt hammer: MakeHammer refuses with FAILED_PRECONDITION, which the step does not retry', async () => {
    const head = await makeHead('n2');
    const handle = await (node('handle') as StepDefinition<HammerInput>).run(nodeContext('n2', 'handle', input));
    const err = await rejectionOf((node('hammer') as StepDefinition<HammerInput>).run(nodeContext('n2', 'hammer', { ...input, failAt: 'hammer' }, { head: { headId: head.id }, handle })));
    expect(err).to.be.instanceOf(StepError);
    expect(err).to.include({ code: 'FAILED_PRECONDITION', retryable: false });
    expect(err.message).to.match(/fault injected/);
  });

  it('head\'s compensation destroys the head of its output, once per call, by id; a hammer can no longer use it', async () => {
    const head = await makeHead('n3');
    await undoHead(nodeContext('n3', 'head', input, {}, { headId: head.id }));
    await undoHead(nodeContext('n3', 'head', input, {}, { headId: head.id }));
    const destroyed = callsOf('n3').filter((c) => c.method === 'DestroyHead');
    expect(destroyed.map((c) => [c.head_id, c.error])).to.deep.equal([[head.id, ''], [head.id, '']]);
    const handle = await (node('handle') as StepDefinition<HammerInput>).run(nodeContext('n3', 'handle', input));
    const err = await rejectionOf((node('hammer') as StepDefinition<HammerInput>).run(nodeContext('n3', 'hammer', input, { head: { headId: head.id }, handle })));
    expect(err.message).to.match(new RegExp(`head ${head.id} was destroyed`));
  });

  it('head\'s compensation without an output tolerates that no head was made, and the factory makes none for that request afterwards', async () => {
    await undoHead(nodeContext('n4', 'head', input, {}, undefined));
    expect(callsOf('n4').map((c) => [c.method, c.error])).to.deep.equal([['DestroyHead', 'NOT_FOUND: head for request n4 not found']]);
    const err = await rejectionOf(makeHead('n4'));
    expect(err.message).to.equal('the head of request n4 was destroyed before it was made');
  });

  it('answers over gRPC: NOT_FOUND for an unknown head, INVALID_ARGUMENT without an idempotency key, every call in ListFactoryCalls and ListCalls', async () => {
    expect((await rejectionOf(call(service.client, 'DestroyHead', { head_id: 'head-999' }))).code).to.equal(grpc.status.NOT_FOUND);
    expect((await rejectionOf(call(service.client, 'MakeHandle', { request_id: 'n5', size: 'long' }))).code).to.equal(grpc.status.INVALID_ARGUMENT);
    const { calls } = (await call<{ calls: { method: string; started_at_ms: string }[] }>(service.client, 'ListFactoryCalls', {})).response;
    expect(calls.length).to.equal(service.state.calls().length);
    expect(Number(calls[0].started_at_ms)).to.be.greaterThan(0);
    const counts = (await call<{ calls: { method: string }[] }>(service.client, 'ListCalls', {})).response.calls;
    expect(counts.map((c) => c.method)).to.include.members(['DestroyHead', 'MakeHandle', 'MakeHammer']);
  });
});
