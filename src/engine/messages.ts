import { z } from 'zod';
import { PoisonMessageError } from './errors';
import { HEADERS, type Message } from './transport';

/** Carries a saga's context to the topic of the step to run next (async facades). */
export interface StepMessage {
  kind: 'step';
  requestId: string;
  facade: string;
  version: number;
  node: string;
  attempt: number;
  input: unknown;
  results: Record<string, unknown>;
}

/** Asks the facade's rollback consumer to compensate a failed saga's completed steps. */
export interface RollbackMessage {
  kind: 'rollback';
  requestId: string;
  facade: string;
  version: number;
  failedNode: string;
  error: { code: string; message: string };
  /** In order of completion; compensated in reverse. */
  completed: { node: string; output: unknown }[];
  input: unknown;
}

/** Broadcast to every instance when a saga ends or is aborted: wakes the caller of a throttled facade. */
export interface OutcomeMessage {
  kind: 'outcome';
  requestId: string;
  facade: string;
  version: number;
  status: string;
  input: unknown;
}

export type SagaMessage = StepMessage | RollbackMessage | OutcomeMessage;

const base = {
  requestId: z.string().min(1),
  facade: z.string().min(1),
  version: z.number().int().min(1),
  input: z.unknown(),
};

const schema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('step'),
    ...base,
    node: z.string().min(1),
    attempt: z.number().int().min(1),
    results: z.record(z.string(), z.unknown()),
  }),
  z.object({
    kind: z.literal('rollback'),
    ...base,
    failedNode: z.string().min(1),
    error: z.object({ code: z.string(), message: z.string() }),
    completed: z.array(z.object({ node: z.string().min(1), output: z.unknown() })),
  }),
  z.object({ kind: z.literal('outcome'), ...base, status: z.string().min(1) }),
]);

export function encodeMessage(topic: string, msg: SagaMessage): Message {
  const node = msg.kind === 'step' ? msg.node : msg.kind === 'rollback' ? msg.failedNode : '';
  return {
    topic,
    key: msg.requestId,
    value: JSON.stringify(msg),
    headers: {
      [HEADERS.requestId]: msg.requestId,
      [HEADERS.facade]: msg.facade,
      [HEADERS.node]: node,
      [HEADERS.attempt]: String(msg.kind === 'step' ? msg.attempt : 1),
      'content-type': 'application/json',
    },
  };
}

/** Parses a message or throws PoisonMessageError saying what is wrong with it. */
export function decodeMessage(message: Message): SagaMessage {
  let json: unknown;
  try {
    json = JSON.parse(message.value);
  } catch (err) {
    throw new PoisonMessageError(`not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PoisonMessageError(`invalid saga message: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
