import type { Example } from '../example';
import { createDeliveryClients } from './clients';
import { registerDeliveryFacades } from './facade';

/**
 * Order delivery (seed 004): a strict state machine keyed by the order id, versions 1 and 2 side
 * by side. Which versions this process registers: app.yaml `examples.delivery.versions` (or
 * OCH_DELIVERY_VERSIONS=1,2), default both.
 */
export const delivery: Example = {
  name: 'delivery',
  protoFiles: [],
  register(registry, { upstreams, examples }) {
    const clients = createDeliveryClients(upstreams);
    registerDeliveryFacades(registry, clients, examples.delivery.versions);
    return () => clients.close();
  },
};
