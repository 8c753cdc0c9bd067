import { AlreadyExistsError, NotFoundError } from './errors';
import { isStep, type FacadeDefinition } from './facade';
import { checkFacade, type Graph } from './graph';

/** Facades by name. Registering a name twice is an error. */
export class FacadeRegistry {
  private readonly facades = new Map<string, FacadeDefinition>();
  private readonly graphs = new Map<string, Graph>();

  /** Checks the definition (start-up error naming the facade and node) and adds it. */
  register<I, R>(def: FacadeDefinition<I, R>): this {
    if (this.facades.has(def.name)) throw new AlreadyExistsError(`facade ${def.name}`);
    const graph = checkFacade(def);
    this.facades.set(def.name, def);
    this.graphs.set(def.name, graph);
    return this;
  }

  graph(name: string): Graph {
    const graph = this.graphs.get(name);
    if (!graph) throw new NotFoundError(`facade ${name}`);
    return graph;
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

  /** Every topic the orchestrator consumes for its facades: async step topics and rollback topics (not external steps' command topics). */
  consumedTopics(): string[] {
    const topics = new Set<string>();
    for (const def of this.facades.values()) {
      topics.add(def.rollbackTopic);
      for (const node of def.nodes) if (isStep(node) && node.topic) topics.add(node.topic);
    }
    return [...topics];
  }
}
