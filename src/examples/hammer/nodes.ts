import type { ExternalStepDefinition, StepDefinition } from '../../engine/facade';
import { callOptionsOf, callUpstream, ignoreNotFound } from '../../grpc/call';
import { TOPICS } from '../../../topics/topics';
import type { Hammer, HammerClients, Handle, Head } from './clients';
import type { HammerInput } from './input';
import type { HeadCommand } from './services/head-worker';

export interface HeadMade { headId: string }
export interface HandleMade { handleId: string }
export interface HammerMade { hammerId: string }

/** How long the head step waits for the head worker's reply before it fails with DEADLINE_EXCEEDED. */
export const HEAD_TIMEOUT_MS = 30_000;

/**
 * An external step: the orchestrator publishes the command on the head-commands topic, and the
 * head factory worker (services/head-worker.ts) makes the head and reports back. Undone by
 * destroying that head: the compensation gets the step's output (its headId).
 */
export function headNode(clients: HammerClients): ExternalStepDefinition<HammerInput, HeadMade> {
  return {
    kind: 'external',
    name: 'head',
    topic: TOPICS.hammerHeadCommands.name,
    timeoutMs: HEAD_TIMEOUT_MS,
    command: (ctx): HeadCommand => ({ headType: ctx.input.headType, delayMs: ctx.input.delayMs }),
    // Without an output (the reply never came: timed out), the head the worker may have made for
    // this request, if any; NOT_FOUND means it made none, and the factory will make none for it now.
    async compensate(ctx) {
      await ignoreNotFound(callUpstream<object, Head>(clients.factory, 'DestroyHead',
        ctx.output ? { head_id: ctx.output.headId, request_id: ctx.requestId } : { request_id: ctx.requestId }, callOptionsOf(ctx)));
    },
  };
}

/** Runs beside head (neither waits for the other). No compensation: a handle is stock that stays. */
export function handleNode(clients: HammerClients): StepDefinition<HammerInput, HandleMade> {
  return {
    name: 'handle',
    topic: TOPICS.hammerHandle.name,
    async run(ctx) {
      const handle = await callUpstream<object, Handle>(clients.factory, 'MakeHandle', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, size: ctx.input.handleSize, delay_ms: ctx.input.delayMs,
      }, callOptionsOf(ctx));
      return { handleId: handle.id };
    },
  };
}

/** Once head and handle are made, assembles the hammer from both (failAt: 'hammer' makes the factory refuse). */
export function hammerNode(clients: HammerClients): StepDefinition<HammerInput, HammerMade> {
  return {
    name: 'hammer',
    after: ['head', 'handle'],
    topic: TOPICS.hammerHammer.name,
    async run(ctx) {
      const { headId } = ctx.results.head as HeadMade;
      const { handleId } = ctx.results.handle as HandleMade;
      const hammer = await callUpstream<object, Hammer>(clients.factory, 'MakeHammer', {
        request_id: ctx.requestId, idempotency_key: ctx.idempotencyKey, head_id: headId, handle_id: handleId,
        delay_ms: ctx.input.delayMs, fault_inject: ctx.input.failAt === 'hammer',
      }, callOptionsOf(ctx));
      return { hammerId: hammer.id };
    },
  };
}
