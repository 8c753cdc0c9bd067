import * as grpc from '@grpc/grpc-js';
import { UPSTREAM_CHANNEL } from '../../grpc/call';
import { clientOf, loadProtos } from '../../grpc/protos';

/** accounts.v1 and gateway.v1 messages as the loaded protos give them (int64 as decimal strings). */
export type EntryKind = 'DEBIT' | 'CREDIT' | 'REFUND' | 'CREDIT_REVERSAL';
export interface Entry { id: string; request_id: string; account: string; amount: string; kind: EntryKind; reverses: string; balance: string }
export interface Charge { id: string; request_id: string; account: string; amount: string; status: 'PENDING' }

export interface TransferClients {
  accounts: grpc.Client;
  gateway: grpc.Client;
  close(): void;
}

/** gRPC clients of the demo accounts service and payment gateway. */
export function createTransferClients(addresses: { accounts: string; gateway: string }): TransferClients {
  const protos = loadProtos(['accounts.proto', 'gateway.proto']);
  const credentials = grpc.credentials.createInsecure();
  const accounts = new (clientOf(protos, 'accounts.v1.AccountsService'))(addresses.accounts, credentials, UPSTREAM_CHANNEL);
  const gateway = new (clientOf(protos, 'gateway.v1.PaymentGatewayService'))(addresses.gateway, credentials, UPSTREAM_CHANNEL);
  return { accounts, gateway, close: () => { accounts.close(); gateway.close(); } };
}
