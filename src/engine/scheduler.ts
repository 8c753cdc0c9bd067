import { ensureError, StepError } from './errors';
import { kindOf, type Duration, type NodeDefinition } from './facade';
import type { Graph } from './graph';
import { nodeOf, visitOf, type Saga } from './saga';

/** What the caller must do after the saga moved: run these step visits, send these commands. */
export interface Started {
  /** Step visits recorded as started (attempt on record): run them in-process or publish them. */
  steps: string[];
  /** External step visits recorded as waiting for their reply: publish their commands. */
  commands: string[];
}

export type Advance =
  | { kind: 'continue'; started: Started }
  | { kind: 'complete' }
  /** A node failed in a way that ends the saga (visit limit, a branch that threw, a timeout): compensate. */
  | { kind: 'fail'; node: string; error: Error };

/** Default for NodeDefinition.maxVisits. */
export const DEFAULT_MAX_VISITS = 100;

/**
 * Decides what runs next, and records it on the saga: no I/O. Everything that moves a saga goes
 * through here: a step's outcome, an event, a reply, a timer. Nodes whose `after` have all
 * succeeded start together; a branch starts the node it picks (and, for a loop, reopens what lies
 * after it); waits take kept events at once; a saga with nothing running, ready or parked is done.
 */
export class Scheduler {
  constructor(private readonly graph: Graph, private readonly maxVisits = DEFAULT_MAX_VISITS) {}

  /** At the start: the roots. Later: whatever became ready. `picks`: nodes branches picked. */
  advance(saga: Saga, picks: string[] = []): Advance {
    const started: Started = { steps: [], commands: [] };
    for (;;) {
      const next: string[] = [];
      // Picks first: a loop's new visit must be on record before what runs after it is found ready,
      // or that would start at once on the old visit's output.
      for (const node of [...new Set(picks)]) {
        const outcome = this.start(saga, this.graph.node(node), started, true);
        if (outcome.kind === 'fail') return outcome;
        next.push(...outcome.picks);
      }
      const ready = this.ready(saga);
      for (const node of ready) {
        const outcome = this.start(saga, this.graph.node(node), started, false);
        if (outcome.kind === 'fail') return outcome;
        next.push(...outcome.picks);
      }
      if (next.length === 0 && ready.length === 0) break;
      picks = next;
    }
    if (started.steps.length > 0 || started.commands.length > 0) return { kind: 'continue', started };
    const active = saga.steps.some((s) => s.status === 'RUNNING' || s.status === 'RETRYING' || s.status === 'WAITING');
    if (active) return { kind: 'continue', started };
    for (const node of this.graph.def.nodes) {
      const last = saga.latest(node.name);
      if (last?.status === 'PENDING') saga.skipped(last.name, 'not reached');
    }
    return { kind: 'complete' };
  }

  /**
   * A visit's outcome is in: `output` from the node. Runs its branch and returns what it picked
   * (or the failure the branch threw), then the caller calls advance() with the picks.
   */
  succeed(saga: Saga, key: string, output: unknown): { kind: 'ok'; picks: string[] } | { kind: 'fail'; node: string; error: Error } {
    const node = this.graph.node(nodeOf(key));
    let pick: string | undefined;
    if (node.next) {
      try {
        pick = node.next(output, { requestId: saga.requestId, input: saga.input, results: { ...saga.results(), [node.name]: output }, visit: visitOf(key) });
        if (pick !== undefined && !(node.branches ?? []).includes(pick)) throw new Error(`next() picked ${pick}, which is not one of its branches (${(node.branches ?? []).join(', ')})`);
      } catch (err) {
        const error = ensureError(err);
        saga.stepFailed(key, error.message);
        return { kind: 'fail', node: node.name, error };
      }
    }
    saga.stepSucceeded(key, output);
    if (!node.next) return { kind: 'ok', picks: [] };
    for (const other of node.branches ?? []) if (other !== pick) this.skip(saga, other, `${node.name} picked ${pick ?? 'no branch'}`);
    if (pick === undefined) return { kind: 'ok', picks: [] };
    // A loop: what lies after the picked node runs again, as new visits.
    for (const d of this.graph.downstream(pick)) {
      const last = saga.latest(d)!;
      if (d !== pick && !this.graph.isRoot(d) && (last.status === 'SUCCEEDED' || last.status === 'FAILED' || last.status === 'SKIPPED')) saga.reopen(d);
    }
    return { kind: 'ok', picks: [pick] };
  }

  /** Due timers: a retry's next attempt, a sleep's end, a wait's or an external step's timeout. */
  fire(saga: Saga, now = Date.now()): Advance {
    const started: Started = { steps: [], commands: [] };
    const picks: string[] = [];
    for (const visit of saga.due(now)) {
      const node = this.graph.node(nodeOf(visit.name));
      if (visit.status === 'RETRYING') {
        saga.stepStarted(visit.name);
        started.steps.push(visit.name);
        continue;
      }
      const kind = kindOf(node);
      if (kind === 'sleep' || kind === 'race') {
        const outcome = this.succeed(saga, visit.name, kind === 'sleep' ? null : { event: 'timeout' });
        if (outcome.kind === 'fail') return outcome;
        picks.push(...outcome.picks);
        continue;
      }
      // A wait's timeout is its own deadline: it expires, as a saga past its expiry does.
      const what = node.kind === 'wait' ? `expired, no ${node.events.join(' or ')} event` : 'no reply';
      const error = new StepError('DEADLINE_EXCEEDED', `${node.name}: ${what} before ${visit.wakeAt}`, false);
      saga.stepFailed(visit.name, error.message);
      return { kind: 'fail', node: node.name, error };
    }
    return merge(started, this.advance(saga, picks));
  }

  /** Waits take the kept events they accept, oldest first. Returns the picks of those that ended. */
  deliver(saga: Saga): { kind: 'ok'; picks: string[]; consumed: number } | { kind: 'fail'; node: string; error: Error } {
    const picks: string[] = [];
    let consumed = 0;
    for (const visit of saga.steps.filter((s) => s.status === 'WAITING')) {
      const node = this.graph.node(nodeOf(visit.name));
      if (node.kind !== 'wait') continue;
      const event = saga.kept().find((e) => node.events.includes(e.event));
      if (!event) continue;
      saga.eventConsumed(visit.name, event);
      consumed++;
      const outcome = this.succeed(saga, visit.name, node.events.length > 1 ? { event: event.event, payload: event.payload } : event.payload);
      if (outcome.kind === 'fail') return outcome;
      picks.push(...outcome.picks);
    }
    return { kind: 'ok', picks, consumed };
  }

  /** Nodes whose latest visit is pending and whose `after` all succeeded (roots: at once). */
  private ready(saga: Saga): string[] {
    const ready: string[] = [];
    for (const node of this.graph.def.nodes) {
      if (this.graph.branchTargets.has(node.name)) continue;
      if (saga.latest(node.name)?.status !== 'PENDING') continue;
      if ((node.after ?? []).every((a) => saga.latest(a)?.status === 'SUCCEEDED')) ready.push(node.name);
    }
    return ready;
  }

  private start(saga: Saga, node: NodeDefinition, started: Started, picked: boolean): { kind: 'ok'; picks: string[] } | { kind: 'fail'; node: string; error: Error } {
    const key = picked ? saga.reopen(node.name) : saga.latest(node.name)!.name;
    const limit = node.maxVisits ?? this.maxVisits;
    if (visitOf(key) > limit) {
      const error = new StepError('FAILED_PRECONDITION', `node ${node.name} visited more than ${limit} times (maxVisits)`, false);
      saga.skipped(key, error.message);
      return { kind: 'fail', node: node.name, error };
    }
    const at = (d: Duration<unknown> | undefined): Date | undefined => {
      const ms = typeof d === 'function' ? d(saga.input, saga.results()) : d;
      return ms === undefined ? undefined : new Date(Date.now() + Math.max(0, ms));
    };
    switch (node.kind) {
      case undefined:
      case 'step':
        saga.stepStarted(key);
        started.steps.push(key);
        return { kind: 'ok', picks: [] };
      case 'external':
        saga.stepStarted(key);
        saga.parked(key, at(node.timeoutMs), `reply to its command on ${node.topic}`);
        started.commands.push(key);
        return { kind: 'ok', picks: [] };
      case 'sleep':
        saga.parked(key, at(node.delayMs) ?? new Date(), 'sleep');
        return { kind: 'ok', picks: [] };
      case 'wait': {
        saga.parked(key, at(node.timeoutMs), `event ${node.events.join(' | ')}`);
        const outcome = this.deliver(saga);
        return outcome.kind === 'fail' ? outcome : { kind: 'ok', picks: outcome.picks };
      }
    }
  }

  /** A node on a branch not taken is skipped, and so is what runs only after it. */
  private skip(saga: Saga, node: string, why: string): void {
    const last = saga.latest(node);
    if (last?.status !== 'PENDING') return;
    saga.skipped(last.name, why);
    for (const d of this.graph.dependents.get(node) ?? []) this.skip(saga, d.name, `after skipped ${node}`);
  }
}

function merge(started: Started, advance: Advance): Advance {
  if (advance.kind !== 'continue') return advance;
  return { kind: 'continue', started: { steps: [...started.steps, ...advance.started.steps], commands: [...started.commands, ...advance.started.commands] } };
}
