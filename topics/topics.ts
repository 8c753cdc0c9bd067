/**
 * Every Kafka topic the orchestrator uses, declared once. Code refers to topics through these
 * constants only; the transport adds the configured prefix and creates missing topics at start-up.
 */
export interface TopicSpec {
  /** Logical name; the transport prefixes it with `transport.kafka.topicPrefix`. */
  readonly name: string;
  readonly partitions: number;
  /** Where messages that cannot be handled go, with the reason in a header. */
  readonly deadLetter?: string;
}

export const DEAD_LETTER: TopicSpec = { name: 'orchestrator.dead-letter', partitions: 1 };

// Node topics are partitioned so that several orchestrator pods (one consumer group) split the work.
const node = (name: string): TopicSpec => ({ name, partitions: 8, deadLetter: DEAD_LETTER.name });

export const TOPICS = {
  bookingSyncRollback: node('booking.sync.rollback'),
  bookingAsyncCreateOrder: node('booking.async.create-order'),
  bookingAsyncCreatePayment: node('booking.async.create-payment'),
  bookingAsyncRollback: node('booking.async.rollback'),
  bookingThrottledCreateOrder: node('booking.throttled.create-order'),
  bookingThrottledCreatePayment: node('booking.throttled.create-payment'),
  bookingThrottledRollback: node('booking.throttled.rollback'),
  // Hammer (seed 002). head is an external step: its commands go to the head factory worker
  // (src/examples/hammer/services/head-worker.ts), not to the orchestrator, which gets the
  // worker's answer on stepReplies.
  hammerHeadCommands: node('hammer.head-commands'),
  hammerHandle: node('hammer.handle'),
  hammerHammer: node('hammer.hammer'),
  hammerRollback: node('hammer.rollback'),
  // Transfer with webhook (seed 001); its webhook wait has no topic of its own (events come on sagaEvents).
  transferDebit: node('transfer.debit'),
  transferGateway: node('transfer.gateway'),
  transferCredit: node('transfer.credit'),
  transferRollback: node('transfer.rollback'),
  // Order delivery (seed 004): checkout is its only step; every other node is a wait (events come on sagaEvents).
  deliveryCheckout: node('delivery.checkout'),
  deliveryRollback: node('delivery.rollback'),
  // Ride-hailing bargain (seed 000): its races have no topic of their own (events come on sagaEvents).
  bargainDispatch: node('bargain.dispatch'),
  bargainOffer: node('bargain.offer'),
  bargainAssign: node('bargain.assign'),
  bargainRollback: node('bargain.rollback'),
  // The park bench's ParkSleep (examples.park.enabled): nothing to compensate, so one partition.
  parkRollback: { name: 'park.rollback', partitions: 1, deadLetter: DEAD_LETTER.name },
  // How the outside world talks to a saga (key = request id): events for its waits, as SendEvent
  // does, value `{"event": string, "payload": object, "idempotencyKey"?: string}` ...
  sagaEvents: node('orchestrator.saga-events'),
  // ... and the answers of the services running external steps, as CompleteStep / FailStep do,
  // value `{"step": string, "visit"?: number, "output"?: object, "error"?: string}`.
  stepReplies: node('orchestrator.step-replies'),
  // Every instance reads all of it (a consumer group per pod): tells the instance holding a
  // throttled call that its saga ended, whichever instance ran the last step; and, in a rolling
  // update, carries a step or rollback, an event or a step reply of a version its consumer lacks to
  // an instance that has it.
  sagaOutcomes: { name: 'orchestrator.saga-outcomes', partitions: 1, deadLetter: DEAD_LETTER.name },
  deadLetter: DEAD_LETTER,
} as const satisfies Record<string, TopicSpec>;

export const ALL_TOPICS: readonly TopicSpec[] = Object.values(TOPICS);

