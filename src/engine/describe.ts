import type { FacadeDefinition, FacadeMode } from './facade';
import type { StepStatus } from './saga';

/** A node of a facade, as ListFacades shows it. Today every node is a step; `after` is what it waits for. */
export interface NodeDescription {
  name: string;
  kind: 'step';
  after: string[];
  /** Async and throttled steps: the topic the orchestrator publishes to itself to run it. */
  topic?: string;
  compensable: boolean;
  /** A branch: the nodes it may choose from. */
  branches?: string[];
  /** A wait or race: the events it accepts. */
  events?: string[];
}

export interface FacadeDescription {
  name: string;
  mode: FacadeMode;
  version: number;
  nodes: NodeDescription[];
  /** The graph as Mermaid `flowchart` text: paste it into any Mermaid renderer. */
  mermaid: string;
}

/** One visit of a node by a saga (a loop visits a node more than once). */
export interface VisitDescription { visit: number; status: StepStatus; attempts: number; output?: unknown; error?: string; startedAt?: string; endedAt?: string; wakeAt?: string }
export interface NodeState { name: string; kind: string; visits: VisitDescription[] }
/** A node parked until one of `events` arrives, or `until` (ISO 8601) passes. */
export interface WaitingFor { node: string; events: string[]; until?: string }
/** GetSaga's view of a saga's graph: each node's visits, what it waits for, the path taken as Mermaid. */
export interface SagaDescription { nodes: NodeState[]; waiting: WaitingFor[]; mermaid: string }

/** A facade's definition as data: its nodes, what each waits for, and the graph drawn as Mermaid. */
export function describeFacade(def: FacadeDefinition): FacadeDescription {
  const nodes = def.steps.map((step, i): NodeDescription => ({
    name: step.name,
    kind: 'step',
    after: i === 0 ? [] : [def.steps[i - 1].name],
    ...(step.topic ? { topic: step.topic } : {}),
    compensable: step.compensate !== undefined,
  }));
  return { name: def.name, mode: def.mode, version: def.version, nodes, mermaid: mermaidOf(nodes) };
}

/** Node ids are positional (n0, n1, …): a node's name may hold characters Mermaid reads as syntax. */
function mermaidOf(nodes: readonly NodeDescription[]): string {
  const id = new Map(nodes.map((n, i) => [n.name, `n${i}`]));
  const lines = ['flowchart LR', '  start(("start"))'];
  for (const n of nodes) lines.push(`  ${id.get(n.name)}["${n.name.replaceAll('"', '#quot;')}"]`);
  lines.push('  done(("end"))');
  const last = new Set(nodes.map((n) => n.name));
  for (const n of nodes) {
    if (n.after.length === 0) lines.push(`  start --> ${id.get(n.name)}`);
    for (const before of n.after) {
      lines.push(`  ${id.get(before)} --> ${id.get(n.name)}`);
      last.delete(before);
    }
  }
  for (const name of last) lines.push(`  ${id.get(name)} --> done`);
  return lines.join('\n');
}
