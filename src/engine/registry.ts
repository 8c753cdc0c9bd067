import { AlreadyExistsError, NotFoundError } from './errors';
import { checkFacade, type FacadeDefinition } from './facade';

/** Facades by name. Registering a name twice is an error. */
export class FacadeRegistry {
  private readonly facades = new Map<string, FacadeDefinition>();

  register<I, R>(def: FacadeDefinition<I, R>): this {
    if (this.facades.has(def.name)) throw new AlreadyExistsError(`facade ${def.name}`);
    checkFacade(def);
    this.facades.set(def.name, def);
    return this;
  }

  get(name: string): FacadeDefinition {
    const def = this.facades.get(name);
    if (!def) throw new NotFoundError(`facade ${name}`);
    return def;
  }

  find(name: string): FacadeDefinition | undefined {
    return this.facades.get(name);
  }

  all(): FacadeDefinition[] {
    return [...this.facades.values()];
  }

  /** Every topic some facade consumes: async step topics and rollback topics. */
  consumedTopics(): string[] {
    const topics = new Set<string>();
    for (const def of this.facades.values()) {
      topics.add(def.rollbackTopic);
      for (const step of def.steps) if (step.topic) topics.add(step.topic);
    }
    return [...topics];
  }
}
