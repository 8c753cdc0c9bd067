import { compensationOf, isStep, kindOf, type FacadeDefinition, type NodeDefinition } from './facade';

/**
 * A facade's nodes as a graph, built and checked once at registration: who runs after whom, who
 * a branch may pick, what lies downstream of a node (what a loop back to it runs again).
 */
export class Graph {
  readonly byName: ReadonlyMap<string, NodeDefinition>;
  /** Nodes that list the key in their `after`. */
  readonly dependents: ReadonlyMap<string, readonly NodeDefinition[]>;
  /** Nodes a branch before them may pick: they run when picked, never on their own (a loop's way back does not count). */
  readonly branchTargets: ReadonlySet<string>;
  /** Nodes that start the saga: no `after`, and no branch picks them. */
  readonly roots: readonly NodeDefinition[];
  private readonly downstreamOf = new Map<string, ReadonlySet<string>>();

  constructor(readonly def: FacadeDefinition) {
    this.byName = new Map(def.nodes.map((n) => [n.name, n]));
    const dependents = new Map<string, NodeDefinition[]>();
    for (const n of def.nodes) for (const a of n.after ?? []) dependents.set(a, [...(dependents.get(a) ?? []), n]);
    this.dependents = dependents;
    // Computed after dependents: downstream() needs them. A branch back to a node it comes after is a loop, not a way in.
    const forward = def.nodes.flatMap((b) => (b.branches ?? []).filter((t) => t !== b.name && !this.downstream(t).has(b.name)));
    this.branchTargets = new Set(forward);
    this.roots = def.nodes.filter((n) => (n.after ?? []).length === 0 && !this.branchTargets.has(n.name));
  }

  node(name: string): NodeDefinition {
    const node = this.byName.get(name);
    if (!node) throw new Error(`facade ${this.def.name} has no node ${name}`);
    return node;
  }

  /** Where a node leads: its dependents and its branches. */
  successors(name: string): string[] {
    return [...(this.dependents.get(name) ?? []).map((d) => d.name), ...(this.node(name).branches ?? [])];
  }

  /** Every node reachable from `name` (itself excluded unless a loop leads back to it). */
  downstream(name: string): ReadonlySet<string> {
    let found = this.downstreamOf.get(name);
    if (found) return found;
    const seen = new Set<string>();
    const todo = this.successors(name);
    while (todo.length > 0) {
      const n = todo.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      todo.push(...this.successors(n));
    }
    found = seen;
    this.downstreamOf.set(name, found);
    return found;
  }

  /** A root: it runs whenever its visit is pending, so a loop reopens it only by picking it. */
  isRoot(name: string): boolean {
    return this.roots.some((r) => r.name === name);
  }

  /** Compensable nodes, for the rollback: steps and external steps with a compensation. */
  compensable(name: string): boolean {
    return compensationOf(this.node(name)) !== undefined;
  }
}

/**
 * Checks a definition once, at registration, so that mistakes fail at start-up with the facade and
 * node named: names, topics, unknown or misplaced edges, cycles with no way out, unreachable nodes.
 */
export function checkFacade(def: FacadeDefinition): Graph {
  const problems: string[] = [];
  if (!def.name) problems.push('name is empty');
  if (!Number.isInteger(def.version) || def.version < 1) problems.push('version must be an integer >= 1');
  if (def.nodes.length === 0) problems.push('has no nodes');
  if (!def.rollbackTopic) problems.push('rollbackTopic is empty');
  const names = new Set<string>();
  for (const node of def.nodes) {
    if (!node.name || node.name.includes('#')) problems.push(`node name "${node.name}" must be non-empty and hold no '#'`);
    if (names.has(node.name)) problems.push(`node ${node.name} is declared twice`);
    names.add(node.name);
  }
  if (problems.length === 0) problems.push(...checkNodes(def, names));
  if (problems.length > 0) throw new Error(`facade ${def.name || '(unnamed)'}: ${problems.join('; ')}`);
  const graph = new Graph(def);
  const graphProblems = checkShape(graph);
  if (graphProblems.length > 0) throw new Error(`facade ${def.name}: ${graphProblems.join('; ')}`);
  return graph;
}

function checkNodes(def: FacadeDefinition, names: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const targets = new Set(def.nodes.flatMap((n) => (n.branches ?? []).filter((t) => t !== n.name)));
  for (const node of def.nodes) {
    const at = `node ${node.name}`;
    for (const a of node.after ?? []) if (!names.has(a)) problems.push(`${at}: after names unknown node ${a}`);
    for (const b of node.branches ?? []) if (!names.has(b)) problems.push(`${at}: branches names unknown node ${b}`);
    if ((node.branches ?? []).length > 0 && !node.next) problems.push(`${at}: has branches but no next() to pick one`);
    if (node.next && (node.branches ?? []).length === 0) problems.push(`${at}: has next() but declares no branches`);
    if (targets.has(node.name) && (node.after ?? []).length > 0) problems.push(`${at}: a node a branch picks cannot also wait for 'after' (${node.after!.join(', ')})`);
    if (node.maxVisits !== undefined && !(Number.isInteger(node.maxVisits) && node.maxVisits >= 1)) problems.push(`${at}: maxVisits must be an integer >= 1`);
    if (isStep(node) && def.mode !== 'sync' && !node.topic) problems.push(`${def.mode} step ${node.name} has no topic`);
    if (node.kind === 'external' && !node.topic) problems.push(`${at}: an external step needs the topic its command goes to`);
    if (node.kind === 'wait') {
      if (node.events.length === 0) problems.push(`${at}: a wait needs at least one event to receive`);
      for (const e of node.events) if (!e || e === 'timeout') problems.push(`${at}: event name "${e}" is not allowed`);
      if (kindOf(node) === 'race' && !node.next) problems.push(`${at}: a race needs next() to pick a branch from what won`);
    }
  }
  return problems;
}

function checkShape(graph: Graph): string[] {
  const problems: string[] = [];
  if (graph.roots.length === 0) problems.push('no node starts the saga (every node has `after` or is a branch target)');
  // A cycle of `after` edges can never start: each node waits for another in it.
  const afterCycle = findAfterCycle(graph);
  if (afterCycle) problems.push(`nodes ${afterCycle.join(' -> ')} wait for each other in a cycle of 'after'`);
  // Every node must be reachable from the roots.
  const reached = new Set<string>(graph.roots.map((r) => r.name));
  for (const r of graph.roots) for (const n of graph.downstream(r.name)) reached.add(n);
  for (const n of graph.def.nodes) if (!reached.has(n.name)) problems.push(`node ${n.name} is unreachable`);
  // A loop must have a way out: some node in it leads outside it, or a branch may end the path.
  for (const n of graph.def.nodes) {
    if (!graph.downstream(n.name).has(n.name)) continue;
    const loop = [...graph.downstream(n.name)].filter((m) => graph.downstream(m).has(n.name));
    const exits = loop.some((m) => graph.node(m).next !== undefined || graph.successors(m).some((s) => !graph.downstream(s).has(n.name)));
    if (!exits) problems.push(`node ${n.name} is on a loop with no branch out of it`);
  }
  return problems;
}

function findAfterCycle(graph: Graph): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    path.push(name);
    for (const d of graph.dependents.get(name) ?? []) {
      const cycle = visit(d.name);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const n of graph.def.nodes) {
    const cycle = visit(n.name);
    if (cycle) return cycle;
  }
  return undefined;
}

/** A line of steps, each after the one before: the simplest graph, and how the booking facades read. */
export function sequence<I>(...nodes: NodeDefinition<I>[]): NodeDefinition<I>[] {
  return nodes.map((n, i) => (i === 0 ? n : { ...n, after: [...(n.after ?? []), nodes[i - 1].name] }));
}
