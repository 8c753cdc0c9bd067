import { AlreadyExistsError } from '../engine/errors';
import type { SagaSnapshot } from '../engine/saga';
import type { SagaStore } from '../engine/store';

/** The embedded default: sagas live as long as the process. Copies on the way in and out, like a real store. */
export class MemorySagaStore implements SagaStore {
  private readonly sagas = new Map<string, SagaSnapshot>();

  async create(saga: SagaSnapshot): Promise<void> {
    if (this.sagas.has(saga.requestId)) throw new AlreadyExistsError(`saga ${saga.requestId}`);
    this.sagas.set(saga.requestId, structuredClone(saga));
  }

  async get(requestId: string): Promise<SagaSnapshot | undefined> {
    const saga = this.sagas.get(requestId);
    return saga && structuredClone(saga);
  }

  async save(saga: SagaSnapshot): Promise<void> {
    this.sagas.set(saga.requestId, structuredClone(saga));
  }

  async close(): Promise<void> {}
}
