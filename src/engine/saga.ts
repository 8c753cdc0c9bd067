import { IllegalTransitionError } from './errors';
import {
  DETACHED, nodeOf, SAGA_TRANSITIONS, STEP_TRANSITIONS, TERMINAL_STATUSES, visitKey, visitOf,
  type ReceivedEvent, type SagaMode, type SagaSnapshot, type SagaStatus, type StepState, type StepStatus,
} from './saga-state';
import type { SagaChanges } from './store';

export * from './saga-state';

/**
 * One saga: an instance of a versioned facade definition. It owns its state changes, refuses
 * illegal ones and records each in an append-only history. It does no I/O.
 */
export class Saga {
  /** History events [0, storedEvents) and steps outside changedSteps are as the store has them at this revision. */
  private storedEvents: number;
  private readonly changedSteps = new Set<string>();
  /** Visits that left WAITING since the last save: their wait spans are recorded once that is stored. */
  private endedWaits: string[] = [];

  private constructor(private state: SagaSnapshot, private readonly podId: string) {
    this.storedEvents = state.history.length;
  }

  static start(args: {
    requestId: string; facade: string; version: number; mode: SagaMode; input: unknown; steps: readonly string[]; podId: string; deadline?: Date;
    /** The lease holder: this process incarnation (default: podId). */
    owner?: string;
    /** Started by StartSaga: no caller waits for it, and recovery resumes it rather than compensating. */
    detached?: boolean;
    traceParent?: string;
  }): Saga {
    const now = new Date().toISOString();
    const saga = new Saga(
      {
        requestId: args.requestId,
        facade: args.facade,
        version: args.version,
        mode: args.mode,
        status: 'RUNNING',
        revision: 0,
        owner: args.owner ?? args.podId,
        deadline: args.deadline?.toISOString(),
        input: args.input,
        steps: args.steps.map((name) => ({ name, status: 'PENDING', attempts: 0, compensationAttempts: 0 })),
        history: [],
        ...(args.traceParent ? { traceParent: args.traceParent } : {}),
        createdAt: now,
        updatedAt: now,
      },
      args.podId,
    );
    saga.record('SAGA_STARTED', undefined, args.detached ? DETACHED : undefined);
    return saga;
  }

  static fromSnapshot(snapshot: SagaSnapshot, podId: string): Saga {
    return new Saga(structuredClone(snapshot), podId);
  }

  /** Like fromSnapshot(), without the copy: for a snapshot nobody else holds (fresh from a store). */
  static adopt(snapshot: SagaSnapshot, podId: string): Saga {
    return new Saga(snapshot, podId);
  }

  get requestId(): string { return this.state.requestId; }
  get facade(): string { return this.state.facade; }
  get version(): number { return this.state.version; }
  get status(): SagaStatus { return this.state.status; }
  get input(): unknown { return this.state.input; }
  get mode(): SagaMode { return this.state.mode; }
  get owner(): string | undefined { return this.state.owner; }
  get revision(): number { return this.state.revision; }
  get isTerminal(): boolean { return TERMINAL_STATUSES.includes(this.state.status); }
  get deadline(): Date | undefined { return this.state.deadline ? new Date(this.state.deadline) : undefined; }
  get pastDeadline(): boolean { return this.state.deadline !== undefined && Date.parse(this.state.deadline) <= Date.now(); }
  get steps(): readonly Readonly<StepState>[] { return this.state.steps; }
  get leaseAgeMs(): number | undefined { return this.state.leaseAgeMs; }
  get detached(): boolean { return this.state.history[0]?.detail === DETACHED; }
  get traceParent(): string | undefined { return this.state.traceParent; }
  get wakeAtMs(): number | undefined { return this.state.wakeAt === undefined ? undefined : Date.parse(this.state.wakeAt); }

  /** The step whose compensation attempt started and has no outcome on record: it is running now, or was cut off. */
  compensationInFlight(): string | undefined {
    const last = new Map<string, string>();
    for (const e of this.state.history) if (e.step && e.type.startsWith('COMPENSATION_')) last.set(e.step, e.type);
    for (const [step, type] of last) if (type === 'COMPENSATION_STARTED' && this.step(step).status === 'COMPENSATING') return step;
    return undefined;
  }

  /** After a successful write: the store's new revision; the store now has everything. */
  saved(revision: number): void {
    this.state.revision = revision;
    this.storedEvents = this.state.history.length;
    this.changedSteps.clear();
  }

  /** What changed since the saga was read or last written, so that a store may write only that. */
  changes(): SagaChanges {
    return { storedEvents: this.storedEvents, steps: this.changedSteps };
  }

  /** This process incarnation drives the saga from now on (the store renews the lease on save). */
  own(owner: string): void {
    this.state.owner = owner;
  }

  /**
   * Nothing of the saga runs or is in hand: every visit waits for an event, a reply or a timer, and
   * no caller waits on it here. Such a saga holds no lease (see disown()).
   */
  get idle(): boolean {
    return this.state.status === 'RUNNING' && (this.state.mode === 'async' || this.detached)
      && !this.state.steps.some((v) => v.status === 'RUNNING');
  }

  /**
   * A parked saga costs nothing while it waits: with no owner it holds no lease, so no heartbeat
   * renews it. Whoever moves it on (an event's receiver, the instance claiming its due timer) owns it.
   */
  disown(): void {
    delete this.state.owner;
  }

  /** Sets or clears the durable timer for the next attempt. */
  wakeAt(at: Date | undefined): void {
    this.state.wakeAt = at?.toISOString();
  }

  /** Outputs of the nodes that produced one, by node name (the latest visit's when a loop ran it again). */
  results(): Record<string, unknown> {
    const results: Record<string, unknown> = {};
    for (const s of this.state.steps) if (s.output !== undefined) results[nodeOf(s.name)] = s.output;
    return results;
  }

  step(name: string): Readonly<StepState> {
    const step = this.find(name);
    if (!step) throw new Error(`saga ${this.requestId} has no step ${name}`);
    return step;
  }

  find(key: string): Readonly<StepState> | undefined {
    return this.state.steps.find((s) => s.name === key);
  }

  /** The node's latest visit (visits are appended in order). */
  latest(node: string): Readonly<StepState> | undefined {
    return this.state.steps.findLast((s) => s.name === node || (s.name.startsWith(node) && nodeOf(s.name) === node));
  }

  /** After a ConcurrencyError: the store's newer state replaces this one, and the change is worked out again. */
  replaceWith(snapshot: SagaSnapshot): void {
    this.state = snapshot;
    this.storedEvents = snapshot.history.length;
    this.changedSteps.clear();
    this.endedWaits = [];
  }

  /** The visits that stopped waiting (an event, a reply, a timer, the saga ended) since the last call. */
  takeEndedWaits(): string[] {
    if (this.endedWaits.length === 0) return this.endedWaits;
    const ended = this.endedWaits;
    this.endedWaits = [];
    return ended;
  }

  /**
   * Makes the node's latest visit PENDING again, for a loop: a skipped visit is reopened, a visit
   * that ran stays in the record and a new one is added. Returns the pending visit's key.
   */
  reopen(node: string): string {
    const last = this.latest(node);
    if (!last) throw new Error(`saga ${this.requestId} has no node ${node}`);
    if (last.status === 'PENDING') return last.name;
    if (last.status === 'SKIPPED') return this.moveStep(last.name, 'PENDING').name;
    const key = visitKey(node, visitOf(last.name) + 1);
    this.state.steps.push({ name: key, status: 'PENDING', attempts: 0, compensationAttempts: 0 });
    this.changedSteps.add(key);
    return key;
  }

  skipped(key: string, why: string): void {
    this.moveStep(key, 'SKIPPED');
    this.record('STEP_SKIPPED', key, why);
  }

  /** A wait, sleep or external step parks the saga until an event, a reply or `until`. */
  parked(key: string, until: Date | undefined, detail: string): void {
    const step = this.step(key) as StepState;
    const fresh = step.status === 'PENDING';
    this.moveStep(key, 'WAITING');
    if (fresh) {
      step.attempts += 1;
      step.startedAt = new Date().toISOString();
    }
    step.wakeAt = until?.toISOString();
    this.record('STEP_WAITING', key, until ? `${detail} until ${step.wakeAt}` : detail);
  }

  /** Durably received, kept until a wait takes it. Returns its history seq. */
  eventReceived(event: string, payload: unknown, idempotencyKey?: string): number {
    this.record('EVENT_RECEIVED', undefined, JSON.stringify({ event, payload, idempotencyKey }));
    return this.state.history.length;
  }

  /** The received events no wait has taken yet, oldest first. */
  kept(): ReceivedEvent[] {
    const consumed = new Set<number>();
    const received: ReceivedEvent[] = [];
    for (const e of this.state.history) {
      if (e.type === 'EVENT_CONSUMED') consumed.add((JSON.parse(e.detail!) as { seq: number }).seq);
      else if (e.type === 'EVENT_RECEIVED') {
        const { event, payload, idempotencyKey } = JSON.parse(e.detail!) as Omit<ReceivedEvent, 'seq'>;
        received.push({ seq: e.seq, event, payload, idempotencyKey });
      }
    }
    return received.filter((r) => !consumed.has(r.seq));
  }

  /** An event with this idempotency key was received already. */
  hasEvent(idempotencyKey: string): boolean {
    const needle = JSON.stringify(idempotencyKey);
    return this.state.history.some((e) => e.type === 'EVENT_RECEIVED' && e.detail!.includes(needle)
      && (JSON.parse(e.detail!) as { idempotencyKey?: string }).idempotencyKey === idempotencyKey);
  }

  eventConsumed(key: string, event: ReceivedEvent): void {
    this.record('EVENT_CONSUMED', key, JSON.stringify({ seq: event.seq, event: event.event }));
  }

  /**
   * The saga's timer: the earliest of its visits' timers and, while it runs, its deadline. Every
   * running saga that no caller drives here has one, so that a saga nobody moves (its driving
   * message dead-lettered, a hand-back lost, a sync caller gone while it waits) is still expired
   * and compensated at the deadline.
   */
  rearm(): void {
    if (this.state.status !== 'RUNNING') return;
    let earliest: string | undefined;
    let parkedVisit = false;
    for (const s of this.state.steps) {
      if (s.status !== 'WAITING' && s.status !== 'RETRYING') continue;
      parkedVisit = true;
      if (s.wakeAt && (!earliest || s.wakeAt < earliest)) earliest = s.wakeAt;
    }
    // A sync saga whose steps run here, held by its caller, needs none: the call's deadline aborts
    // its steps, and if this process dies its lease lapses. Sparing the timer spares that hot path
    // an index entry per saga.
    const unheld = parkedVisit || this.state.mode !== 'sync' || this.detached;
    const deadline = unheld ? this.state.deadline : undefined;
    this.state.wakeAt = deadline && (!earliest || deadline < earliest) ? deadline : earliest;
  }

  /** Visits whose timer is due. */
  due(now = Date.now()): Readonly<StepState>[] {
    return this.state.steps.filter((s) => s.wakeAt && (s.status === 'WAITING' || s.status === 'RETRYING') && Date.parse(s.wakeAt) <= now);
  }

  snapshot(): SagaSnapshot {
    return structuredClone(this.state);
  }

  /** The live state, not a copy: for a store to write it at once. Whoever keeps it must copy it. */
  view(): Readonly<SagaSnapshot> {
    return this.state;
  }

  complete(output: unknown): void {
    this.moveTo('COMPLETED');
    this.state.output = output;
  }

  startCompensating(failedStep: string, error: string, code: string): void {
    this.moveTo('COMPENSATING', failedStep, error);
    this.state.error = `${failedStep}: ${error}`;
    this.state.errorCode = code;
  }

  compensated(): void {
    this.moveTo('COMPENSATED');
  }

  compensationFailed(error: string): void {
    this.moveTo('COMPENSATION_FAILED', undefined, error);
    this.state.error = error;
  }

  /** RetryCompensation: back to COMPENSATING, failed compensations get fresh attempts. */
  retryCompensation(): void {
    if (this.state.status !== 'COMPENSATION_FAILED') throw new IllegalTransitionError(`saga ${this.requestId} (retry compensation)`, this.state.status, 'COMPENSATING');
    this.moveTo('COMPENSATING', undefined, 'compensation retried on request');
    for (const step of this.state.steps) {
      if (step.status !== 'COMPENSATION_FAILED') continue;
      step.compensationAttempts = 0;
      this.changedSteps.add(step.name);
    }
  }

  stepStarted(name: string): number {
    const step = this.moveStep(name, 'RUNNING');
    step.attempts += 1;
    delete step.runner;
    delete step.wakeAt;
    step.startedAt = new Date().toISOString();
    this.record('STEP_STARTED', name, `attempt ${step.attempts}`);
    return step.attempts;
  }

  /** `owner` runs the attempt on record, which another process recorded (and published). */
  stepTaken(name: string, owner: string): void {
    const step = this.step(name) as StepState;
    step.runner = owner;
    this.changedSteps.add(name);
    this.record('STEP_TAKEN', name, `attempt ${step.attempts} by ${owner}`);
  }

  stepSucceeded(name: string, output: unknown): void {
    const step = this.moveStep(name, 'SUCCEEDED');
    step.output = output;
    delete step.wakeAt;
    step.endedAt = new Date().toISOString();
    this.record('STEP_SUCCEEDED', name);
  }

  /** An attempt failed and another is scheduled. */
  stepRetrying(name: string, error: string, nextAt: Date): void {
    const step = this.moveStep(name, 'RETRYING');
    step.error = error;
    step.wakeAt = nextAt.toISOString();
    this.record('STEP_ATTEMPT_FAILED', name, `attempt ${step.attempts}: ${error}; next attempt at ${nextAt.toISOString()}`);
  }

  stepFailed(name: string, error: string): void {
    const step = this.moveStep(name, 'FAILED');
    step.error = error;
    delete step.wakeAt;
    step.endedAt = new Date().toISOString();
    this.record('STEP_FAILED', name, error);
  }

  compensationStarted(name: string): number {
    const step = this.moveStep(name, 'COMPENSATING');
    delete step.wakeAt;
    step.compensationAttempts += 1;
    this.record('COMPENSATION_STARTED', name, `attempt ${step.compensationAttempts}`);
    return step.compensationAttempts;
  }

  compensationSucceeded(name: string): void {
    this.moveStep(name, 'COMPENSATED');
    this.record('COMPENSATION_SUCCEEDED', name);
  }

  /** One failed attempt; the step stays COMPENSATING while attempts remain. */
  compensationAttemptFailed(name: string, error: string, final: boolean): void {
    const step = this.moveStep(name, final ? 'COMPENSATION_FAILED' : 'COMPENSATING');
    step.error = error;
    this.record('COMPENSATION_FAILED', name, error);
  }

  private moveTo(to: SagaStatus, step?: string, detail?: string): void {
    const from = this.state.status;
    if (!SAGA_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(`saga ${this.requestId}`, from, to);
    this.state.status = to;
    // A finished saga has no timer: a stale one would be scanned by every claim and gauge for ever.
    if (TERMINAL_STATUSES.includes(to)) delete this.state.wakeAt;
    this.record(`SAGA_${to}`, step, detail);
  }

  private moveStep(name: string, to: StepStatus): StepState {
    const step = this.step(name) as StepState;
    if (!STEP_TRANSITIONS[step.status].includes(to)) {
      throw new IllegalTransitionError(`saga ${this.requestId} step ${name}`, step.status, to);
    }
    if (step.status === 'WAITING' && to !== 'WAITING') this.endedWaits.push(name);
    step.status = to;
    this.changedSteps.add(name);
    return step;
  }

  private record(type: string, step?: string, detail?: string): void {
    const at = new Date().toISOString();
    this.state.updatedAt = at;
    this.state.history.push({ seq: this.state.history.length + 1, at, type, step, detail, podId: this.podId });
  }
}
