import type { Context } from 'mocha';
import { Stack, type SagaView } from './stack';
import { unreachable, waitFor } from './wait';

/** What the e2e tests of the examples read from GetSaga beyond SagaView. */
export type FullSaga = SagaView & {
  version: number; revision: number; history: { type: string; step?: string; detail?: string }[]; mermaid: string; error: string;
  waiting: { node: string; events: string[] }[]; nodes: unknown[]; left_alone: string;
};

/**
 * Shared by an example's e2e describes: a stack, the sagas each test touched (their paths are
 * printed when it fails), and the steering of one saga by events.
 */
export class SagaHarness {
  stack!: Stack;
  private readonly touched = new Set<string>();
  private keys = 0;

  /** Marks a saga as this test's: its path is printed if the test fails. */
  track(id: string): string {
    this.touched.add(id);
    return id;
  }

  async saga(id: string): Promise<FullSaga> {
    return (await this.stack.saga(id)) as FullSaga;
  }

  /** Polls until the saga is parked at `node` (its wait recorded as WAITING); fails if it ends first. */
  async waitingAt(id: string, node: string): Promise<FullSaga> {
    return waitFor(async () => {
      const saga = await this.saga(id);
      // A saga that is no longer running never parks again: fail now, with why it ended.
      if (saga.status !== 'RUNNING') unreachable(`saga ${id} is ${saga.status}: ${saga.error}`);
      return saga.waiting.some((w) => w.node === node) ? saga : undefined;
    }, 60_000, `saga ${id} to wait at ${node}`);
  }

  /** SendEvent with a fresh idempotency key. */
  async send(id: string, event: string, payload: unknown = { by: 'e2e' }): Promise<void> {
    await this.stack.sendEvent(id, event, payload, `${id}:${event}:${++this.keys}`);
  }

  async reaches(id: string, status: string): Promise<FullSaga> {
    return (await this.stack.sagaReaches(id, status, 60_000)) as FullSaga;
  }

  /** Mocha afterEach: on failure, the path (Mermaid) of every saga the test touched. */
  async report(ctx: Context): Promise<void> {
    const ids = [...this.touched];
    this.touched.clear();
    if (ctx.currentTest?.state !== 'failed' || !this.stack) return;
    for (const id of ids) {
      try {
        const saga = await this.saga(id);
        console.log(`\n--- saga ${id}: ${saga.status} (version ${saga.version}) ${saga.error}\n${saga.mermaid}`);
        console.log(saga.steps.map((v) => `  ${v.name} ${v.status} ${v.output_json}`).join('\n'));
        console.log(saga.history.map((e) => `  ${e.type} ${e.step ?? ''} ${e.detail ?? ''}`).join('\n'));
      } catch (err) {
        console.log(`\n--- saga ${id}: ${String(err)}`);
      }
    }
  }
}
