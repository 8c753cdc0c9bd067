import { AlreadyExistsError, MissingVersionError, NotFoundError } from './errors';
import { isStep, type FacadeDefinition } from './facade';
import { checkFacade, type Graph } from './graph';

/**
 * Facades by name and version. Several versions of one facade are registered side by side: new
 * sagas start on the newest (or on a version the caller names), a running saga keeps the version
 * it started with. Registering a name and version twice is an error.
 */
export class FacadeRegistry {
  private readonly facades = new Map<string, FacadeDefinition>();
  private readonly graphs = new Map<FacadeDefinition, Graph>();
  /** By name: the newest version, what new sagas start on (looked up on every start). */
  private readonly newest = new Map<string, FacadeDefinition>();

  /** Checks the definition (start-up error naming the facade and node) and adds it. */
  register<I, R>(def: FacadeDefinition<I, R>): this {
    const key = keyOf(def.name, def.version);
    if (this.facades.has(key)) throw new AlreadyExistsError(`facade ${def.name} version ${def.version}`);
    const graph = checkFacade(def);
    this.facades.set(key, def);
    this.graphs.set(def, graph);
    if ((this.newest.get(def.name)?.version ?? 0) < def.version) this.newest.set(def.name, def);
    return this;
  }

  graph(def: FacadeDefinition): Graph {
    const graph = this.graphs.get(def);
    if (!graph) throw new NotFoundError(`facade ${def.name} version ${def.version}`);
    return graph;
  }

  /** `version` absent or 0: the newest. */
  get(name: string, version = 0): FacadeDefinition {
    const def = this.find(name, version);
    if (def) return def;
    if (this.versions(name).length === 0) throw new NotFoundError(`facade ${name}`);
    throw this.missing(name, version);
  }

  /** The definition a saga of `name` `version` runs on; MissingVersionError when this process does not have it. */
  require(name: string, version: number): FacadeDefinition {
    const def = this.find(name, version);
    if (def) return def;
    throw this.missing(name, version);
  }

  private missing(name: string, version: number): MissingVersionError {
    const have = this.versions(name);
    if (have.length === 0) return new MissingVersionError(name, version, `facade ${name} not found`);
    return new MissingVersionError(name, version, `facade ${name} version ${version} not found (this instance has version${have.length > 1 ? 's' : ''} ${have.join(', ')})`);
  }

  find(name: string, version = 0): FacadeDefinition | undefined {
    return version === 0 ? this.newest.get(name) : this.facades.get(keyOf(name, version));
  }

  /** The versions of a facade this process has, oldest first. */
  versions(name: string): number[] {
    return [...this.facades.values()].filter((d) => d.name === name).map((d) => d.version).sort((a, b) => a - b);
  }

  /** Every registered version of every facade. */
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

function keyOf(name: string, version: number): string {
  return `${name}@${version}`;
}
