import { z } from 'zod';
import { PoisonMessageError } from './errors';
import { TRACEPARENT, traceparentOf } from './tracing';
import { HEADERS, type Message } from './transport';

/*
 * Step, rollback, outcome and handback messages say which saga and which node: their handlers load
 * the saga from the store and read its input and outputs there. They used to carry the input and
 * every output as well, which nobody read: a large event payload or step output then made the next
 * step's message, and the rollback's, too large for the broker, and the saga was published again
 * and again. Now a message is a few hundred bytes whatever the saga holds.
 */

/** Runs the next step visit of a saga (async and throttled facades), on the step's topic. */
export interface StepMessage {
  kind: 'step';
  requestId: string;
  facade: string;
  version: number;
  node: string;
  /** Which visit of the node (absent: 1, the first; a loop came back for more). */
  visit?: number;
  attempt: number;
}

/** Asks the facade's rollback consumer to compensate a failed saga's completed steps. */
export interface RollbackMessage {
  kind: 'rollback';
  requestId: string;
  facade: string;
  version: number;
  failedNode: string;
  error: { code: string; message: string };
  /** The nodes with an output on record, in order of completion (checked against the graph; the outputs are in the store). */
  completed: { node: string }[];
}

/** Broadcast to every instance when a saga ends or is aborted: wakes the caller of a throttled facade. */
export interface OutcomeMessage {
  kind: 'outcome';
  requestId: string;
  facade: string;
  version: number;
  status: string;
}

/** An event (events topic) as handed back: its idempotency key always set (its own, or its record's). */
export interface EventWork {
  kind: 'event';
  requestId: string;
  event: string;
  payload: Record<string, unknown>;
  idempotencyKey: string;
}

/** A step reply (step-replies topic) as handed back: the visit it answers pinned when it came without one. */
export interface ReplyWork {
  kind: 'reply';
  requestId: string;
  step: string;
  visit?: number;
  output?: unknown;
  error?: string;
}

/**
 * Broadcast by an instance that got a message for a saga of a facade version it does not have (a
 * mixed deployment): an instance that has the version handles `message` as if it had come on
 * `topic` (see handback.ts for which).
 */
export interface HandbackMessage {
  kind: 'handback';
  requestId: string;
  facade: string;
  version: number;
  topic: string;
  message: StepMessage | RollbackMessage | EventWork | ReplyWork;
  /** The instance that handed it back. */
  from: string;
}

export type SagaMessage = StepMessage | RollbackMessage | OutcomeMessage | HandbackMessage;

// Unknown keys are dropped: the input and outputs that messages of earlier releases carry (still in
// flight during a rolling update) are ignored, and a handback sends such a message on without them.
const base = {
  requestId: z.string().min(1),
  facade: z.string().min(1),
  version: z.number().int().min(1),
};

const stepSchema = z.object({
  kind: z.literal('step'),
  ...base,
  node: z.string().min(1),
  visit: z.number().int().min(1).default(1),
  attempt: z.number().int().min(1),
});

const rollbackSchema = z.object({
  kind: z.literal('rollback'),
  ...base,
  failedNode: z.string().min(1),
  error: z.object({ code: z.string(), message: z.string() }),
  completed: z.array(z.object({ node: z.string().min(1) })),
});

const eventWorkSchema = z.object({
  kind: z.literal('event'),
  requestId: z.string().min(1),
  event: z.string().min(1),
  payload: z.record(z.string(), z.unknown()),
  idempotencyKey: z.string().min(1),
});

const replyWorkSchema = z.object({
  kind: z.literal('reply'),
  requestId: z.string().min(1),
  step: z.string().min(1),
  visit: z.number().int().min(1).optional(),
  output: z.unknown().optional(),
  error: z.string().min(1).optional(),
});

const schema = z.discriminatedUnion('kind', [
  stepSchema,
  rollbackSchema,
  z.object({ kind: z.literal('outcome'), ...base, status: z.string().min(1) }),
  z.object({
    kind: z.literal('handback'), ...base, topic: z.string().min(1),
    message: z.discriminatedUnion('kind', [stepSchema, rollbackSchema, eventWorkSchema, replyWorkSchema]), from: z.string(),
  }),
]);

export function encodeMessage(topic: string, msg: SagaMessage): Message {
  const inner = msg.kind === 'handback' ? msg.message : msg;
  const node = inner.kind === 'step' ? inner.node : inner.kind === 'rollback' ? inner.failedNode : inner.kind === 'reply' ? inner.step : '';
  return jsonMessage(topic, msg.requestId, msg.facade, node, inner.kind === 'step' ? inner.attempt : 1, onWire(msg));
}

/**
 * The previous release's decoder requires `input` on every message, `results` on step messages and
 * an `output` per completed node: empty ones keep its instances handling what this release sends
 * during a rolling update (they read none of them either). Drop once no such instance can run.
 */
function onWire(msg: SagaMessage): unknown {
  const work = (m: HandbackMessage['message']) => {
    if (m.kind === 'step') return { ...m, input: null, results: {} };
    if (m.kind === 'rollback') return { ...m, input: null, completed: m.completed.map((c) => ({ node: c.node, output: null })) };
    return m; // events and replies handed back: the previous release never had these
  };
  if (msg.kind === 'handback') return { ...msg, input: null, message: work(msg.message) };
  if (msg.kind === 'outcome') return { ...msg, input: null };
  return work(msg);
}

/**
 * Keyed by request id, with the saga headers every message carries, and the active span's
 * traceparent (when tracing is on): its consumer's spans are children of the span that sent it.
 */
function jsonMessage(topic: string, requestId: string, facade: string, node: string, attempt: number, body: unknown): Message {
  const headers: Record<string, string> = {
    [HEADERS.requestId]: requestId,
    [HEADERS.facade]: facade,
    [HEADERS.node]: node,
    [HEADERS.attempt]: String(attempt),
    'content-type': 'application/json',
  };
  const traceparent = traceparentOf();
  if (traceparent) headers[TRACEPARENT] = traceparent;
  return { topic, key: requestId, value: JSON.stringify(body), headers };
}

/** Parses a message or throws PoisonMessageError saying what is wrong with it. */
export function decodeMessage(message: Message): SagaMessage {
  return parse(message, schema, 'saga message');
}

/** The command of an external step, for the worker that runs it: it answers on replyTopic (see StepReply). */
export interface CommandMessage<P = unknown> {
  requestId: string;
  facade: string;
  step: string;
  visit: number;
  attempt: number;
  /** The same for every attempt of this visit: the worker acts once per key. */
  idempotencyKey: string;
  replyTopic: string;
  payload: P;
}

export function encodeCommand(topic: string, msg: CommandMessage): Message {
  return jsonMessage(topic, msg.requestId, msg.facade, msg.step, msg.attempt, msg);
}

/** On the events topic (key = request id): the same as SendEvent. */
export interface EventMessage {
  requestId: string;
  event: string;
  payload: Record<string, unknown>;
  /** The sender's, or else the record's own (see decodeEvent); absent only for a message no transport delivered. */
  idempotencyKey?: string;
}

/** On the step-replies topic (key = request id): the same as CompleteStep (output) or FailStep (error). */
export interface StepReply {
  requestId: string;
  step: string;
  /** Which visit the command was for; absent: the latest. */
  visit?: number;
  output?: unknown;
  error?: string;
}

const eventSchema = z.object({
  event: z.string().min(1),
  payload: z.record(z.string(), z.unknown()).default({}),
  idempotencyKey: z.string().min(1).optional(),
});

const replySchema = z.object({
  step: z.string().min(1),
  visit: z.number().int().min(1).optional(),
  output: z.unknown().optional(),
  error: z.string().min(1).optional(),
}).refine((r) => (r.error === undefined) !== (r.output === undefined), { message: 'exactly one of output and error is required' });

/**
 * An event without an idempotency key of its own is keyed on its record (topic, partition,
 * offset): a redelivery of the record (a rebalance, or a crash before the commit) counts once,
 * while the same content sent again as a new record counts again.
 */
export function decodeEvent(message: Message): EventMessage {
  const event = { requestId: keyOf(message), ...parse(message, eventSchema, 'event') };
  if (event.idempotencyKey !== undefined || message.offset === undefined) return event;
  return { ...event, idempotencyKey: `record:${message.topic}/${message.partition ?? 0}/${message.offset}` };
}

export function decodeReply(message: Message): StepReply {
  return { requestId: keyOf(message), ...parse(message, replySchema, 'step reply') };
}

function keyOf(message: Message): string {
  if (!message.key) throw new PoisonMessageError('no key: the key must be the saga\'s request id');
  return message.key;
}

function parse<T>(message: Message, schema: z.ZodType<T>, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(message.value);
  } catch (err) {
    throw new PoisonMessageError(`not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PoisonMessageError(`invalid ${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
