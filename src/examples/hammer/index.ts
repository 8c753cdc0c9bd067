import type { Example } from '../example';
import { createHammerClients, remoteHeadMaker } from './clients';
import { registerHammerFacade } from './facade';
import { HeadWorker } from './services/head-worker';

/** Hammer (seed 002): head (an external step, made by the head worker) and handle at once, then the hammer. */
export const hammer: Example = {
  name: 'hammer',
  protoFiles: [],
  register(registry, { upstreams }) {
    const clients = createHammerClients(upstreams);
    registerHammerFacade(registry, clients);
    return () => clients.close();
  },
  // On Kafka the head worker runs in the demo services process; embedded, it runs here and asks the factory over gRPC.
  async embedded(transport, { upstreams, log }) {
    const clients = createHammerClients(upstreams);
    const worker = new HeadWorker({ transport, heads: remoteHeadMaker(clients), log: log.child({ component: 'head-worker' }) });
    await worker.start();
    return () => {
      worker.stop();
      clients.close();
    };
  },
};
