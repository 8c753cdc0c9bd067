import { ensureError, OrchestratorError, PoisonMessageError } from '../../../engine/errors';
import type { Logger } from '../../../engine/logger';
import type { CommandMessage } from '../../../engine/messages';
import { HEADERS, type Message, type Transport } from '../../../engine/transport';
import { TOPICS, type TopicSpec } from '../../../../topics/topics';

/** What the head step's command asks for (the payload its `command` builds). */
export interface HeadCommand {
  headType: string;
  /** How long making the head takes. */
  delayMs: number;
}

/** One head to make, idempotent per `idempotencyKey`. */
export interface HeadOrder {
  requestId: string;
  idempotencyKey: string;
  type: string;
  delayMs: number;
}

/** Who makes the heads: the factory itself (same process) or the factory's MakeHead over gRPC. */
export interface HeadMaker {
  makeHead(order: HeadOrder, signal: AbortSignal): Promise<{ id: string }>;
}

/** The command message of an external step, as the orchestrator publishes it. */
export type ExternalStepCommand<P> = CommandMessage<P>;

/** What goes back on the reply topic: the step's output, or why it failed. */
export type ExternalStepReply = { step: string; visit: number; output: object } | { step: string; visit: number; error: string };

/** The topics a head worker's transport must know: where commands come from, replies go, bad messages end. */
export const HEAD_WORKER_TOPICS: readonly TopicSpec[] = [TOPICS.hammerHeadCommands, TOPICS.stepReplies, TOPICS.deadLetter];

export interface HeadWorkerOptions {
  transport: Transport;
  heads: HeadMaker;
  log: Logger;
}

/**
 * The hammer's head factory worker (the `head` external step's other side): takes the commands the
 * orchestrator publishes on the head-commands topic, makes the head (waiting the command's delayMs),
 * and answers on the command's reply topic with `{step, visit, output: {headId}}`, or
 * `{step, visit, error}` when the factory refuses. On Kafka it runs in the demo factory's process
 * (consumer group shared by its instances); embedded, inside the orchestrator on the in-process
 * transport. A command that cannot be parsed is dead-lettered (PoisonMessageError). A redelivered
 * command gets the same head (the factory is idempotent per the command's idempotency key). When
 * the factory cannot be reached, or the worker stops mid-work, the command is kept (a retryable
 * failure: retried, or given back to the consumer group).
 */
export class HeadWorker {
  private readonly stopping = new AbortController();

  constructor(private readonly opts: HeadWorkerOptions) {}

  /** Resolves once the subscription is live (on Kafka: the consumer joined its group). */
  async start(): Promise<void> {
    await this.opts.transport.subscribe([TOPICS.hammerHeadCommands.name], (message) => this.handle(message));
  }

  /**
   * Cuts the heads being made: their commands fail as retryable, so that a draining Kafka consumer
   * gives them back (call it once the transport's drain has begun). Safe to call twice.
   */
  stop(): void {
    this.stopping.abort();
  }

  async handle(message: Message): Promise<void> {
    const command = parseHeadCommand(message.value);
    const log = this.opts.log.child({ requestId: command.requestId, facade: command.facade, node: command.step });
    const { headType: type, delayMs } = command.payload;
    let reply: ExternalStepReply;
    try {
      const head = await this.opts.heads.makeHead({ requestId: command.requestId, idempotencyKey: command.idempotencyKey, type, delayMs }, this.stopping.signal);
      log.info('head made', { headId: head.id, visit: command.visit, attempt: command.attempt });
      reply = { step: command.step, visit: command.visit, output: { headId: head.id } };
    } catch (err) {
      if (this.stopping.signal.aborted) throw new OrchestratorError('UNAVAILABLE', 'head worker stopping: command given back', true, { cause: err });
      // e.g. the factory unreachable: the transport retries the command with backoff.
      if ((err as { retryable?: unknown }).retryable === true) throw err;
      const error = ensureError(err).message;
      log.info('head refused', { error, visit: command.visit, attempt: command.attempt });
      reply = { step: command.step, visit: command.visit, error };
    }
    await this.opts.transport.publish({
      topic: command.replyTopic,
      key: command.requestId,
      value: JSON.stringify(reply),
      headers: { [HEADERS.requestId]: command.requestId, [HEADERS.facade]: command.facade, [HEADERS.node]: command.step, [HEADERS.attempt]: String(command.attempt) },
    });
  }
}

/** A head command, checked field by field; anything else is poison (dead-lettered, naming what is wrong). */
export function parseHeadCommand(value: string): ExternalStepCommand<HeadCommand> {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new PoisonMessageError('not JSON: a head command must be a JSON object');
  }
  const cmd = object(raw, 'command');
  const header = {
    requestId: text(cmd.requestId, 'requestId'),
    facade: text(cmd.facade, 'facade'),
    step: text(cmd.step, 'step'),
    visit: count(cmd.visit, 'visit'),
    attempt: count(cmd.attempt, 'attempt'),
    idempotencyKey: text(cmd.idempotencyKey, 'idempotencyKey'),
    replyTopic: text(cmd.replyTopic, 'replyTopic'),
  };
  // The only reply topic there is; anything else would be a publish to a topic nobody declared.
  if (header.replyTopic !== TOPICS.stepReplies.name) throw new PoisonMessageError(`replyTopic: ${JSON.stringify(header.replyTopic)} is not the step-replies topic`);
  const payload = object(cmd.payload, 'payload');
  // An empty head type is well-formed: the factory refuses it, and the step fails with its reason.
  if (typeof payload.headType !== 'string') throw new PoisonMessageError('payload.headType: must be a string');
  return { ...header, payload: { headType: payload.headType, delayMs: whole(payload.delayMs, 'payload.delayMs') } };
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PoisonMessageError(`${field}: must be a JSON object`);
  return value as Record<string, unknown>;
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new PoisonMessageError(`${field}: must be a non-empty string`);
  return value;
}

function whole(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new PoisonMessageError(`${field}: must be an integer >= 0`);
  return value;
}

function count(value: unknown, field: string): number {
  const n = whole(value, field);
  if (n < 1) throw new PoisonMessageError(`${field}: must be >= 1`);
  return n;
}
