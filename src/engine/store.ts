import type { SagaSnapshot } from './saga';

/** Where sagas live between steps. The engine reads and writes snapshots only through this. */
export interface SagaStore {
  /** Fails with AlreadyExistsError when the request id is taken. */
  create(saga: SagaSnapshot): Promise<void>;
  get(requestId: string): Promise<SagaSnapshot | undefined>;
  save(saga: SagaSnapshot): Promise<void>;
  close(): Promise<void>;
}
