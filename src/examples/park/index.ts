import type { Example } from '../example';
import { parkSleepFacade } from './facade';

/**
 * The park bench's sleeping saga (bench/park.ts), registered only when examples.park.enabled
 * (OCH_PARK_EXAMPLE=true): the bench's orchestrators turn it on; ListFacades and the console show
 * it nowhere else.
 */
export const park: Example = {
  name: 'park',
  protoFiles: [],
  register(registry, { examples }) {
    if (examples.park.enabled) registry.register(parkSleepFacade());
  },
};
