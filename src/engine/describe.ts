import { compensationOf, kindOf, type FacadeDefinition, type FacadeMode, type NodeKind } from './facade';
import type { Graph } from './graph';
import { nodeOf, visitOf, type SagaSnapshot, type StepStatus } from './saga';

/** A node of a facade, as ListFacades shows it. */
export interface NodeDescription {
  name: string;
  kind: NodeKind;
  /** The nodes it runs after (all of them must have succeeded). */
  after: string[];
  /** A branch: the nodes it may pick next. */
  branches?: string[];
  /** A wait or race: the events it accepts. */
  events?: string[];
  /** Async and throttled steps: the topic the orchestrator publishes to itself to run it; external steps: where their command goes. */
  topic?: string;
  compensable: boolean;
}

export interface FacadeDescription {
  name: string;
  mode: FacadeMode;
  version: number;
  nodes: NodeDescription[];
  /** The graph as Mermaid `flowchart` text: paste it into any Mermaid renderer. */
  mermaid: string;
}

export interface VisitDescription { visit: number; status: StepStatus; attempts: number; output?: unknown; error?: string; startedAt?: string; endedAt?: string; wakeAt?: string }
export interface NodeState { name: string; kind: string; visits: VisitDescription[] }
export interface WaitingFor { node: string; events: string[]; until?: string }
export interface SagaDescription { nodes: NodeState[]; waiting: WaitingFor[]; mermaid: string }

/** A facade's definition as data: its nodes, what each waits for, and the graph drawn as Mermaid. */
export function describeFacade(def: FacadeDefinition): FacadeDescription {
  const nodes = def.nodes.map((node): NodeDescription => ({
    name: node.name,
    kind: kindOf(node),
    after: [...(node.after ?? [])],
    ...(node.branches ? { branches: [...node.branches] } : {}),
    ...(node.kind === 'wait' ? { events: [...node.events] } : {}),
    ...('topic' in node && node.topic ? { topic: node.topic } : {}),
    compensable: compensationOf(node) !== undefined,
  }));
  return { name: def.name, mode: def.mode, version: def.version, nodes, mermaid: mermaidOf(nodes) };
}

/** A saga on its facade's graph: every node's visits, what it waits for now, and the path taken drawn as Mermaid. */
export function describeSaga(saga: SagaSnapshot, graph: Graph): SagaDescription {
  const nodes = graph.def.nodes.map((node): NodeState => ({
    name: node.name,
    kind: kindOf(node),
    visits: saga.steps.filter((s) => nodeOf(s.name) === node.name && s.status !== 'PENDING').map((s) => ({
      visit: visitOf(s.name), status: s.status, attempts: s.attempts, output: s.output, error: s.error,
      startedAt: s.startedAt, endedAt: s.endedAt, wakeAt: s.wakeAt,
    })),
  }));
  const waiting = saga.status !== 'RUNNING' ? [] : saga.steps.filter((s) => s.status === 'WAITING').map((s): WaitingFor => {
    const node = graph.node(nodeOf(s.name));
    const events = node.kind === 'wait' ? [...node.events] : node.kind === 'external' ? ['reply'] : [];
    return { node: nodeOf(s.name), events, ...(s.wakeAt ? { until: s.wakeAt } : {}) };
  });
  const status = new Map<string, StepStatus>();
  for (const s of saga.steps) status.set(nodeOf(s.name), s.status);
  const lines = [mermaidOf(describeFacade(graph.def).nodes)];
  const ids = new Map(graph.def.nodes.map((n, i) => [n.name, `n${i}`]));
  lines.push(
    '  classDef done fill:#d4edda,stroke:#28a745',
    '  classDef current fill:#fff3cd,stroke:#d39e00',
    '  classDef failed fill:#f8d7da,stroke:#dc3545',
    '  classDef compensated fill:#e2e3e5,stroke:#6c757d,stroke-dasharray:4',
    '  classDef skipped fill:#ffffff,stroke:#adb5bd,color:#adb5bd,stroke-dasharray:2',
  );
  // The node the saga failed at is drawn failed, even once compensated.
  const failedAt = saga.history.findLast((e) => e.type === 'SAGA_COMPENSATING')?.step;
  for (const [node, st] of status) {
    const cls = node === (failedAt && nodeOf(failedAt)) ? 'failed' : CLASS_OF[st];
    if (cls) lines.push(`  class ${ids.get(node)} ${cls}`);
  }
  return { nodes, waiting, mermaid: lines.join('\n') };
}

/** How the path taken is styled: each node by its latest visit. */
const CLASS_OF: Readonly<Record<StepStatus, string | undefined>> = {
  PENDING: undefined,
  RUNNING: 'current',
  RETRYING: 'current',
  WAITING: 'current',
  SUCCEEDED: 'done',
  FAILED: 'failed',
  COMPENSATING: 'compensated',
  COMPENSATED: 'compensated',
  COMPENSATION_FAILED: 'failed',
  SKIPPED: 'skipped',
};

const SHAPE: Readonly<Record<NodeKind, [string, string]>> = {
  step: ['["', '"]'],
  external: ['[/"', '"/]'],
  wait: ['{{"', '"}}'],
  race: ['{{"', '"}}'],
  sleep: ['(["', '"])'],
};

/** Node ids are positional (n0, n1, …): a node's name may hold characters Mermaid reads as syntax. */
function mermaidOf(nodes: readonly NodeDescription[]): string {
  const id = new Map(nodes.map((n, i) => [n.name, `n${i}`]));
  const text = (s: string) => s.replaceAll('"', '#quot;');
  const lines = ['flowchart LR', '  start(("start"))'];
  for (const n of nodes) {
    const [open, close] = SHAPE[n.kind];
    const label = n.kind === 'step' ? n.name : `${n.name} (${n.kind}${n.events ? `: ${n.events.join(' | ')}` : ''})`;
    lines.push(`  ${id.get(n.name)}${open}${text(label)}${close}`);
  }
  lines.push('  done(("end"))');
  const leadsOn = new Set<string>();
  const targets = new Set(nodes.flatMap((n) => n.branches ?? []));
  for (const n of nodes) {
    if (n.after.length === 0 && !targets.has(n.name)) lines.push(`  start --> ${id.get(n.name)}`);
    for (const before of n.after) {
      lines.push(`  ${id.get(before)} --> ${id.get(n.name)}`);
      leadsOn.add(before);
    }
    for (const b of n.branches ?? []) lines.push(`  ${id.get(n.name)} -.-> ${id.get(b)}`);
  }
  // A node nothing runs after ends the saga (a branch may also end it by picking nothing).
  for (const n of nodes) if (!leadsOn.has(n.name) && (n.branches ?? []).length === 0) lines.push(`  ${id.get(n.name)} --> done`);
  for (const n of nodes) if ((n.branches ?? []).length > 0 && !leadsOn.has(n.name)) lines.push(`  ${id.get(n.name)} -.-> done`);
  return lines.join('\n');
}
