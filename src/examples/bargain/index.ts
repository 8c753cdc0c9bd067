import type { Example } from '../example';
import { createBargainClients } from './clients';
import { registerBargainFacade } from './facade';

/** Ride-hailing bargain (seed 000): batches of drivers in a loop, races with timeouts, cancel at any moment. */
export const bargain: Example = {
  name: 'bargain',
  protoFiles: [],
  register(registry, { upstreams }) {
    const clients = createBargainClients(upstreams);
    registerBargainFacade(registry, clients);
    return () => clients.close();
  },
};
