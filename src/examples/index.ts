import type { Example } from './example';
import { bargain } from './bargain';
import { booking } from './booking';
import { delivery } from './delivery';
import { hammer } from './hammer';
import { park } from './park';
import { transfer } from './transfer';

/** Every example the orchestrator serves, in registration order (ListFacades lists them so). */
export const EXAMPLES: readonly Example[] = [booking, hammer, transfer, delivery, bargain, park];
