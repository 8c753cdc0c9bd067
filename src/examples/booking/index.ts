import type { Example } from '../example';
import { createBookingClients } from './clients';
import { registerBookingFacades } from './facades';
import { bookingServiceImpl } from './grpc';

/** SyncBooking, AsyncBooking and ThrottledBooking over the demo order and payment services, and pb.BookingService. */
export const booking: Example = {
  name: 'booking',
  protoFiles: ['booking.proto'],
  register(registry, { upstreams }) {
    const clients = createBookingClients(upstreams);
    registerBookingFacades(registry, clients);
    return () => clients.close();
  },
  services: (orchestrator, log) => [{ name: 'pb.BookingService', implementation: bookingServiceImpl(orchestrator, log) }],
};
