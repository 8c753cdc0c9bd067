import type { Example } from '../example';
import { createTransferClients } from './clients';
import { registerTransferFacade } from './facade';

/** Transfer with a webhook (seed 001): debit, the payment gateway, a wait for its webhook, then credit or refund. */
export const transfer: Example = {
  name: 'transfer',
  protoFiles: [],
  register(registry, { upstreams }) {
    const clients = createTransferClients(upstreams);
    registerTransferFacade(registry, clients);
    return () => clients.close();
  },
};
