import { expect } from 'chai';
import { silentLogger, type Logger } from '../../src/engine/logger';
import { HEADERS, type Message } from '../../src/engine/transport';
import { CallLog } from '../../src/examples/demo/call-log';
import { createHammerClients, remoteHeadMaker, type HammerClients } from '../../src/examples/hammer/clients';
import { Factory, localHeadMaker } from '../../src/examples/hammer/services/factory-service';
import { HeadWorker, parseHeadCommand, type ExternalStepCommand, type HeadCommand } from '../../src/examples/hammer/services/head-worker';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { ALL_TOPICS, TOPICS } from '../../topics/topics';
import { freePort } from '../helpers/stack';
import { serveFactory, type InProcessService } from '../helpers/demo-services';
import { waitFor } from '../helpers/wait';

function command(requestId: string, payload: HeadCommand = { headType: 'claw', delayMs: 0 }, extra: Partial<ExternalStepCommand<HeadCommand>> = {}): ExternalStepCommand<HeadCommand> {
  return {
    requestId, facade: 'Hammer', step: 'head', visit: 1, attempt: 1, idempotencyKey: `${requestId}:head`,
    replyTopic: TOPICS.stepReplies.name, payload, ...extra,
  };
}

/** The head worker on the in-process transport, with the orchestrator's side played by the test. */
class Bus {
  /** What the transport warned about (e.g. a handler failing with a retryable error). */
  readonly warnings: string[] = [];
  readonly transport = new MemoryTransport(ALL_TOPICS, this.recording(), { attempts: 3, backoffMs: 10 });
  readonly replies: Message[] = [];

  private recording(): Logger {
    const log: Logger = { ...silentLogger, warn: (message: string) => this.warnings.push(message), child: () => log };
    return log;
  }

  async listen(): Promise<void> {
    await this.transport.subscribe([TOPICS.stepReplies.name], async (m) => { this.replies.push(m); });
  }

  send(cmd: object | string): Promise<void> {
    const value = typeof cmd === 'string' ? cmd : JSON.stringify(cmd);
    const key = typeof cmd === 'string' ? 'junk' : (cmd as { requestId: string }).requestId;
    return this.transport.publish({ topic: TOPICS.hammerHeadCommands.name, key, value, headers: { [HEADERS.requestId]: key } });
  }

  reply(requestId: string): Promise<{ message: Message; value: Record<string, unknown> }> {
    return waitFor(() => {
      const message = this.replies.find((m) => m.key === requestId);
      return message && { message, value: JSON.parse(message.value) as Record<string, unknown> };
    }, 10_000, `the reply for ${requestId}`);
  }
}

describe('hammer head worker (in-process transport)', () => {
  let bus: Bus;
  let factory: Factory;
  let calls: CallLog;
  let worker: HeadWorker;
  beforeEach(async () => {
    bus = new Bus();
    factory = new Factory();
    calls = new CallLog();
    worker = new HeadWorker({ transport: bus.transport, heads: localHeadMaker(factory, calls), log: silentLogger });
    await worker.start();
    await bus.listen();
  });
  afterEach(async () => {
    worker.stop();
    await bus.transport.close();
  });

  it('makes the head after delayMs and answers on the reply topic with its id, keyed and headed by the request', async () => {
    const before = Date.now();
    await bus.send(command('r1', { headType: 'claw', delayMs: 100 }));
    const { message, value } = await bus.reply('r1');
    expect(value).to.deep.equal({ step: 'head', visit: 1, output: { headId: 'head-1' } });
    expect(message.topic).to.equal(TOPICS.stepReplies.name);
    expect(message.headers).to.include({ [HEADERS.requestId]: 'r1', [HEADERS.facade]: 'Hammer', [HEADERS.node]: 'head', [HEADERS.attempt]: '1' });
    const [made] = factory.calls();
    expect(made).to.include({ method: 'MakeHead', request_id: 'r1', idempotency_key: 'r1:head', head_id: 'head-1', error: '' });
    expect(made.started_at_ms).to.be.at.least(before);
    expect(made.ended_at_ms - made.started_at_ms).to.be.at.least(95);
    expect(calls.all()).to.deep.equal([{ method: 'MakeHead', idempotency_key: 'r1:head', count: 1 }]);
  });

  it('answers a redelivered command with the same head: one head made per idempotency key', async () => {
    await Promise.all([bus.send(command('r2', { headType: 'claw', delayMs: 50 })), bus.send(command('r2', { headType: 'claw', delayMs: 50 }))]);
    await waitFor(() => bus.replies.filter((m) => m.key === 'r2').length === 2, 5_000, 'both replies');
    const outputs = bus.replies.map((m) => (JSON.parse(m.value) as { output: { headId: string } }).output.headId);
    expect(outputs).to.deep.equal(['head-1', 'head-1']);
    expect(new Set(factory.calls().map((c) => c.head_id))).to.have.keys(['head-1']);
  });

  it('answers the factory\'s refusal as the step\'s error: a head destroyed (by request) before it was made is never made', async () => {
    await factory.destroyHead({ requestId: 'r3' }).catch(() => undefined);
    await bus.send(command('r3'));
    const { value } = await bus.reply('r3');
    expect(value).to.deep.equal({ step: 'head', visit: 1, error: 'the head of request r3 was destroyed before it was made' });
    await bus.send(command('r4', { headType: '', delayMs: 0 }));
    expect((await bus.reply('r4')).value).to.deep.equal({ step: 'head', visit: 1, error: 'type: required' });
  });

  it('dead-letters a command it cannot parse, naming what is wrong, and goes on', async () => {
    await bus.send('{not json');
    await bus.send({ ...command('r5'), replyTopic: 'somewhere.else' });
    await bus.send(command('r6'));
    await bus.reply('r6');
    const dead = bus.transport.undelivered(TOPICS.deadLetter.name);
    expect(dead.map((m) => m.headers[HEADERS.deadLetterReason])).to.deep.equal([
      'not JSON: a head command must be a JSON object',
      'replyTopic: "somewhere.else" is not the step-replies topic',
    ]);
    expect(dead.every((m) => m.headers[HEADERS.originalTopic] === TOPICS.hammerHeadCommands.name)).to.equal(true);
  });

  it('reads the command contract field by field', () => {
    expect(parseHeadCommand(JSON.stringify(command('r7')))).to.deep.equal(command('r7'));
    const bad: [string, object, RegExp][] = [
      ['no payload', { ...command('r'), payload: undefined }, /^payload: must be a JSON object/],
      ['a visit 0', { ...command('r'), visit: 0 }, /^visit: must be >= 1/],
      ['a text delay', { ...command('r'), payload: { headType: 'claw', delayMs: '5' } }, /^payload\.delayMs: must be an integer/],
      ['no idempotency key', { ...command('r'), idempotencyKey: '' }, /^idempotencyKey: must be a non-empty string/],
      ['a number head type', { ...command('r'), payload: { headType: 3, delayMs: 0 } }, /^payload\.headType: must be a string/],
    ];
    for (const [what, value, reason] of bad) expect(() => parseHeadCommand(JSON.stringify(value)), what).to.throw(reason);
  });
});

describe('hammer head worker, embedded (heads made by the factory service over gRPC)', () => {
  let bus: Bus;
  let service: InProcessService<Factory> | undefined;
  let clients: HammerClients;
  let worker: HeadWorker;
  afterEach(async () => {
    worker.stop();
    await bus.transport.close();
    clients.close();
    await service?.stop();
  });

  it('makes the head in the factory (MakeHead, counted under the command\'s key), and keeps the command while the factory is down', async () => {
    const port = await freePort();
    bus = new Bus();
    clients = createHammerClients({ factory: `127.0.0.1:${port}` });
    worker = new HeadWorker({ transport: bus.transport, heads: remoteHeadMaker(clients), log: silentLogger });
    await worker.start();
    await bus.listen();
    await bus.send(command('e1', { headType: 'sledge', delayMs: 0 }));
    // Nothing serves yet: the command is retried (UNAVAILABLE is retryable), not answered with an error.
    await waitFor(() => bus.warnings.includes('message handler failed (retryable): waiting and retrying'), 5_000, 'a retryable failure');
    expect(bus.replies).to.deep.equal([]);
    service = await serveFactory(new Factory(), `127.0.0.1:${port}`);
    const { value } = await bus.reply('e1');
    expect(value).to.deep.equal({ step: 'head', visit: 1, output: { headId: 'head-1' } });
    expect(service.calls.all()).to.deep.equal([{ method: 'MakeHead', idempotency_key: 'e1:head', count: 1 }]);
    expect(service.state.calls().map((c) => [c.method, c.head_id])).to.deep.equal([['MakeHead', 'head-1']]);
  });
});
