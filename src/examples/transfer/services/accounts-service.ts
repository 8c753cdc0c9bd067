import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../engine/logger';
import { Refusal, respond } from '../../demo/refusal';
import type { EntryKind } from '../clients';

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback<T> = grpc.sendUnaryData<T>;

/** An accounts.v1.Entry. */
export interface LedgerEntry { id: string; request_id: string; account: string; amount: number; kind: EntryKind; reverses: string; balance: number }

export interface MoveOrder { requestId: string; idempotencyKey: string; account: string; amount: number }

type Movement = 'DEBIT' | 'CREDIT';
const REVERSAL: Readonly<Record<Movement, EntryKind>> = { DEBIT: 'REFUND', CREDIT: 'CREDIT_REVERSAL' };

/**
 * The demo accounts: entries in memory, balances that may go negative. Debits and credits are
 * idempotent per idempotency key; a reversal (refund of a debit, reversal of a credit) is
 * idempotent per entry, and one asked by request id before its entry existed forbids it.
 */
export class AccountsLedger {
  private nextId = 1;
  private readonly entries: LedgerEntry[] = [];
  private readonly byId = new Map<string, LedgerEntry>();
  private readonly byKey = new Map<string, LedgerEntry>();
  /** The debit or credit of each request, by `${kind} ${request id}`. */
  private readonly byRequest = new Map<string, LedgerEntry>();
  /** The reversal of each entry, by the reversed entry's id. */
  private readonly reversalOf = new Map<string, LedgerEntry>();
  /** `${kind} ${request id}` reversed before the entry existed: it must never be made. */
  private readonly tombstones = new Set<string>();
  private readonly balances = new Map<string, number>();

  move(kind: Movement, order: MoveOrder): LedgerEntry {
    if (!order.idempotencyKey) throw new Refusal('INVALID_ARGUMENT', 'idempotency_key: required');
    if (!order.account) throw new Refusal('INVALID_ARGUMENT', 'account: required');
    if (!(Number.isSafeInteger(order.amount) && order.amount > 0)) throw new Refusal('INVALID_ARGUMENT', 'amount: must be a positive integer');
    const existing = this.byKey.get(order.idempotencyKey);
    if (existing) return existing;
    const request = `${kind} ${order.requestId}`;
    if (this.tombstones.has(request)) throw new Refusal('FAILED_PRECONDITION', `the ${kind.toLowerCase()} of request ${order.requestId} was reversed before it was made`);
    const entry = this.add(order.requestId, order.account, kind === 'DEBIT' ? -order.amount : order.amount, kind, '');
    this.byKey.set(order.idempotencyKey, entry);
    this.byRequest.set(request, entry);
    return entry;
  }

  /** Undoes a debit (REFUND) or a credit (CREDIT_REVERSAL), given by entry id or request id. */
  reverse(kind: Movement, by: { entryId?: string; requestId?: string }): LedgerEntry {
    const entry = by.entryId ? this.byId.get(by.entryId) : this.byRequest.get(`${kind} ${by.requestId ?? ''}`);
    if (!entry || entry.kind !== kind) {
      if (!by.entryId && by.requestId) this.tombstones.add(`${kind} ${by.requestId}`);
      throw new Refusal('NOT_FOUND', `${kind.toLowerCase()} ${by.entryId ?? `for request ${by.requestId ?? '(none)'}`} not found`);
    }
    const done = this.reversalOf.get(entry.id);
    if (done) return done;
    const reversal = this.add(entry.request_id, entry.account, kind === 'DEBIT' ? entry.amount : -entry.amount, REVERSAL[kind], entry.id);
    this.reversalOf.set(entry.id, reversal);
    return reversal;
  }

  all(): LedgerEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** Records an entry moving `delta` on the account's balance; the entry shows the amount moved. */
  private add(requestId: string, account: string, delta: number, kind: EntryKind, reverses: string): LedgerEntry {
    const balance = (this.balances.get(account) ?? 0) + delta;
    this.balances.set(account, balance);
    const entry: LedgerEntry = { id: `entry-${this.nextId++}`, request_id: requestId, account, amount: Math.abs(delta), kind, reverses, balance };
    this.entries.push(entry);
    this.byId.set(entry.id, entry);
    return entry;
  }
}

interface MoveRequest { request_id: string; idempotency_key: string; account: string; amount: string }
interface ReverseRequest { entry_id: string; request_id: string }

export function accountsServiceImpl(ledger: AccountsLedger, log: Logger): grpc.UntypedServiceImplementation {
  const move = (kind: Movement) => (call: Call<MoveRequest>, cb: Callback<LedgerEntry>) => {
    const req = call.request;
    respond(cb, () => {
      const entry = ledger.move(kind, { requestId: req.request_id, idempotencyKey: req.idempotency_key, account: req.account, amount: Number(req.amount) });
      log.info(`${kind.toLowerCase()} made`, { requestId: req.request_id, entryId: entry.id, account: entry.account, amount: entry.amount });
      return entry;
    });
  };
  const reverse = (kind: Movement) => (call: Call<ReverseRequest>, cb: Callback<LedgerEntry>) => {
    const { entry_id, request_id } = call.request;
    respond(cb, () => {
      const entry = ledger.reverse(kind, { entryId: entry_id || undefined, requestId: request_id || undefined });
      log.info(`${kind.toLowerCase()} reversed`, { requestId: entry.request_id, entryId: entry.id, reverses: entry.reverses });
      return entry;
    });
  };
  return {
    Debit: move('DEBIT'),
    Credit: move('CREDIT'),
    Refund: reverse('DEBIT'),
    ReverseCredit: reverse('CREDIT'),
    ListEntries(_call: Call<object>, cb: Callback<{ entries: LedgerEntry[] }>) {
      cb(null, { entries: ledger.all() });
    },
  };
}
