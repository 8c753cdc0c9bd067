import { expect } from 'chai';
import { StepError, ValidationError } from '../../src/engine/errors';
import type { FacadeDefinition, NodeDefinition } from '../../src/engine/facade';
import { silentLogger } from '../../src/engine/logger';
import { Orchestrator } from '../../src/engine/orchestrator';
import { FacadeRegistry } from '../../src/engine/registry';
import { TERMINAL_STATUSES, type SagaSnapshot } from '../../src/engine/saga';
import { PostgresSagaStore } from '../../src/store/postgres/postgres-store';
import type { KafkaTransport } from '../../src/transport/kafka-transport';
import { TOPICS } from '../../topics/topics';
import { collect, transportFor, uniqueKafkaNames } from '../helpers/kafka';
import { freshDatabase } from '../helpers/postgres';
import { rejectionOf, waitFor } from '../helpers/wait';

/** What a test asks of the saga: input padding, the size of a's output (and text in it), whether b fails. */
interface Input { pad: string; outA: number; noteA?: string; failB: boolean }

const KB = 1024;
/** The payload limit of this file's instance (limits.maxPayloadBytes): large values fit, a ~900 KB one does not. */
const LIMIT = 800 * KB;
/** Step a of a gated saga runs once the test lets it go. */
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
const undone: string[] = [];

function gate(id: string) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  gates.set(id, { open, opened });
  return open;
}

function facade(name: string, topics: { a: string; b: string; rollback: string }, wait: boolean): FacadeDefinition<Input> {
  const a: NodeDefinition<Input> = {
    name: 'a',
    topic: topics.a,
    async run(ctx) {
      await gates.get(ctx.requestId)?.opened;
      // 'make-nul': text the store cannot keep, made up by the step (an input holding it is refused).
      return { out: 'a'.repeat(ctx.input.outA), note: ctx.input.noteA === 'make-nul' ? 'x\u0000' : ctx.input.noteA };
    },
    async compensate(ctx) {
      undone.push(`${ctx.requestId}:a`);
    },
  };
  const b: NodeDefinition<Input> = {
    name: 'b',
    topic: topics.b,
    after: [wait ? 'go' : 'a'],
    async run(ctx) {
      if (ctx.input.failB) throw new StepError('FAILED_PRECONDITION', 'b refused', false);
      return { ok: true };
    },
  };
  const nodes: NodeDefinition<Input>[] = wait ? [a, { kind: 'wait', name: 'go', events: ['go'], after: ['a'] }, b] : [a, b];
  return {
    name, version: 1, mode: 'async', nodes, rollbackTopic: topics.rollback,
    parseInput(raw) {
      const r = raw as Partial<Input>;
      if (typeof r.outA !== 'number') throw new ValidationError('outA', 'must be a number');
      return { pad: r.pad ?? '', outA: r.outA, noteA: r.noteA, failB: r.failB === true };
    },
    result: () => 'done',
  };
}

/** a, then an external step whose command carries the default payload: the input and every output. */
function commandFacade(): FacadeDefinition<Input> {
  const base = facade('Cmd', { a: TOPICS.transferDebit.name, b: TOPICS.transferCredit.name, rollback: TOPICS.transferRollback.name }, false);
  return { ...base, nodes: [base.nodes[0], { kind: 'external', name: 'ext', topic: TOPICS.hammerHeadCommands.name, after: ['a'] }] };
}

/**
 * Large values and text the store cannot keep, on the real broker and Postgres: a saga whose data
 * adds up past Kafka's message limit still moves (messages carry none of it), a value over
 * limits.maxPayloadBytes is refused where it enters (INVALID_ARGUMENT, or a dead letter saying
 * why) or fails the step that produced it, and `\u0000` or a lone surrogate never reaches the store.
 */
describe('Payload limits and bad text over Kafka and Postgres', function () {
  this.timeout(120_000);
  let orchestrator: Orchestrator;
  let transport: KafkaTransport;
  let store: PostgresSagaStore;
  let names: { topicPrefix: string; groupId: string };
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    const db = await freshDatabase();
    closers.push(() => db.drop());
    store = await PostgresSagaStore.create({ dsn: db.dsn, poolSize: 5, leaseTtlMs: 10_000, connectTimeoutMs: 2_000 }, silentLogger);
    closers.push(() => store.close());
    names = uniqueKafkaNames();
    transport = await transportFor(names);
    closers.push(() => transport.close());
    const registry = new FacadeRegistry()
      .register(facade('Big', { a: TOPICS.bookingAsyncCreateOrder.name, b: TOPICS.bookingAsyncCreatePayment.name, rollback: TOPICS.bookingAsyncRollback.name }, true))
      .register(facade('Chain', { a: TOPICS.bookingThrottledCreateOrder.name, b: TOPICS.bookingThrottledCreatePayment.name, rollback: TOPICS.bookingThrottledRollback.name }, false))
      .register(commandFacade());
    orchestrator = new Orchestrator({
      registry, store, transport, logger: silentLogger, podId: 'payload', outcomeTopic: TOPICS.sagaOutcomes.name, eventTopic: TOPICS.sagaEvents.name,
      options: { maxPayloadBytes: LIMIT, compensation: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100, multiplier: 2, jitter: 0 } },
    });
    await orchestrator.start();
    closers.push(async () => orchestrator.stop());
  });

  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const saga = async (id: string) => (await store.get(id))!;
  const finished = (id: string) => waitFor(async () => {
    const s = await saga(id);
    if (TERMINAL_STATUSES.includes(s.status)) return s;
    // Said when the wait gives up: where the saga is stuck.
    throw new Error(`saga ${id} is ${s.status}, timer ${s.wakeAt ?? 'none'}, ${s.history.length} events, last ${s.history.at(-1)?.type} ${s.history.at(-1)?.detail ?? ''}`);
  }, 90_000, `saga ${id} to finish`);
  const waiting = (id: string) => waitFor(async () => {
    const s = await saga(id);
    if (s.status !== 'RUNNING') throw new Error(`saga ${id} is ${s.status}: ${s.error}`);
    return s.steps.some((v) => v.name === 'go' && v.status === 'WAITING') ? s : undefined;
  }, 60_000, `saga ${id} to wait for go`);
  const onTopic = async (topic: string) => {
    const c = await collect(names.topicPrefix + topic);
    closers.push(c.stop);
    return c;
  };
  const keyed = <M extends { key?: Buffer | null }>(messages: M[], id: string) => messages.filter((m) => m.key?.toString() === id);

  it('a saga whose input, output and event add up past the broker\'s 1 MB still completes: its step messages carry none of them', async () => {
    const id = 'sum-1';
    const toB = await onTopic(TOPICS.bookingAsyncCreatePayment.name);
    await orchestrator.startAsync('Big', id, { pad: 'i'.repeat(250 * KB), outA: 250 * KB });
    await waiting(id);
    await orchestrator.sendEvent(id, 'go', { note: 'e'.repeat(600 * KB) });
    const s = await finished(id);
    expect(s.status, s.error).to.equal('COMPLETED');
    const sent = keyed(toB.messages, id);
    expect(sent).to.have.length(1);
    expect(sent[0].value!.length).to.be.below(300);
  });

  it('cancelling a saga holding more than 1 MB compensates it: the rollback message is not too large', async () => {
    const id = 'sum-2';
    await orchestrator.startAsync('Big', id, { pad: 'i'.repeat(400 * KB), outA: 700 * KB });
    await waiting(id);
    await orchestrator.cancelSaga(id);
    const s = await finished(id);
    expect(s.status, s.error).to.equal('COMPENSATED');
    expect(undone).to.include(`${id}:a`);
  });

  it('a ~900 KB event payload is refused with INVALID_ARGUMENT naming the payload and the limit; the saga waits on and completes', async () => {
    const id = 'big-event';
    await orchestrator.startAsync('Big', id, { outA: 10 });
    await waiting(id);
    const err = await rejectionOf(orchestrator.sendEvent(id, 'go', { note: 'e'.repeat(900 * KB) }));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/^payload: \d+ bytes of JSON, over the limit of 819200 bytes \(limits\.maxPayloadBytes\)/);
    expect((await saga(id)).history.filter((e) => e.type === 'EVENT_RECEIVED')).to.have.length(0);
    await orchestrator.sendEvent(id, 'go', { note: 'small' });
    expect((await finished(id)).status).to.equal('COMPLETED');
  });

  it('a ~900 KB step output fails the step for good (no retry, no loop): the saga is compensated, the next step never sent', async () => {
    const id = 'big-output';
    const toB = await onTopic(TOPICS.bookingThrottledCreatePayment.name);
    await orchestrator.startAsync('Chain', id, { pad: 'i'.repeat(200 * KB), outA: 900 * KB });
    const s: SagaSnapshot = await finished(id);
    expect(s.status, s.error).to.equal('COMPENSATED');
    const a = s.steps.find((v) => v.name === 'a')!;
    expect(a.attempts).to.equal(1);
    expect(s.error).to.match(/output of a: \d+ bytes of JSON, over the limit of 819200 bytes/);
    expect(keyed(toB.messages, id)).to.have.length(0);
  });

  it('an in-process step whose output holds \\u0000 fails for good, naming the path: the saga is compensated, the store unharmed', async () => {
    const refused = await rejectionOf(orchestrator.startAsync('Chain', 'nul-input', { outA: 1, noteA: 'x\u0000' }));
    expect(refused.code).to.equal('INVALID_ARGUMENT');
    expect(refused.message).to.match(/^input\.noteA: contains \\u0000/);
    const id = 'nul-output';
    await orchestrator.startAsync('Chain', id, { outA: 1, noteA: 'make-nul' });
    const s = await finished(id);
    expect(s.status, s.error).to.equal('COMPENSATED');
    expect(s.error).to.match(/output of a\.note: contains \\u0000/);
    expect(s.steps.find((v) => v.name === 'a')!.attempts).to.equal(1);
  });

  it('an external step\'s command too large for the broker fails its visit for good: the saga is compensated, not republished forever', async () => {
    const id = 'big-command';
    const commands = await onTopic(TOPICS.hammerHeadCommands.name);
    // Each value is under the payload limit; the command's default payload, input and outputs together, is not under the broker's.
    await orchestrator.startAsync('Cmd', id, { pad: 'i'.repeat(500 * KB), outA: 500 * KB });
    const s = await finished(id);
    expect(s.status, s.error).to.equal('COMPENSATED');
    expect(s.steps.find((v) => v.name === 'ext')).to.include({ status: 'FAILED' });
    expect(s.error).to.match(/message to hammer\.head-commands refused as too large: \d+ bytes, over transport\.kafka\.maxMessageBytes/);
    expect(undone).to.include(`${id}:a`);
    expect(keyed(commands.messages, id)).to.have.length(0);
  });

  it('SendEvent refuses \\u0000 and a lone surrogate with INVALID_ARGUMENT naming the field, busy or waiting; a good event then completes the saga', async () => {
    const id = 'nul-send';
    const open = gate(id);
    await orchestrator.startAsync('Big', id, { outA: 10 });
    // Busy at a: an accepted event would be kept, and taken by the wait later.
    const busy = await rejectionOf(orchestrator.sendEvent(id, 'go', { items: [{ note: 'bad\u0000' }] }));
    expect(busy.code).to.equal('INVALID_ARGUMENT');
    expect(busy.message).to.match(/^payload\.items\[0\]\.note: contains \\u0000/);
    open();
    await waiting(id);
    const lone = await rejectionOf(orchestrator.sendEvent(id, 'go', { note: 'x\ud800y' }));
    expect(lone.code).to.equal('INVALID_ARGUMENT');
    expect(lone.message).to.match(/^payload\.note: contains a lone surrogate \\ud800/);
    await orchestrator.sendEvent(id, 'go', { note: 'fine' });
    expect((await finished(id)).status).to.equal('COMPLETED');
  });

  it('an event with \\u0000 on the events topic is dead-lettered at once saying why; the saga is unaffected and completes on a good one', async () => {
    const id = 'nul-topic';
    const dead = await onTopic(TOPICS.deadLetter.name);
    const open = gate(id);
    await orchestrator.startAsync('Big', id, { outA: 10 });
    await transport.publish({ topic: TOPICS.sagaEvents.name, key: id, value: '{"event":"go","payload":{"note":"a\\u0000b"}}', headers: {} });
    const letter = await waitFor(() => keyed(dead.messages, id)[0], 60_000, 'the dead letter');
    expect(letter.headers!['x-dead-letter-reason']!.toString()).to.match(/^INVALID_ARGUMENT: payload\.note: contains \\u0000/);
    open();
    await waiting(id);
    await transport.publish({ topic: TOPICS.sagaEvents.name, key: id, value: '{"event":"go","payload":{"note":"fine"}}', headers: {} });
    const s = await finished(id);
    expect(s.status, s.error).to.equal('COMPLETED');
    expect(s.steps.find((v) => v.name === 'go')!.output).to.deep.equal({ note: 'fine' });
  });
});
