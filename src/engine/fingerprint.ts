import { kindOf, type FacadeDefinition } from './facade';

/**
 * A facade version's graph as canonical JSON: mode, rollback topic, and each node's kind, edges,
 * events and topic. Stored the first time the version runs; a process registering the same version
 * with another graph refuses to start (a flow changed without a new version number would send
 * running sagas down paths their history does not match).
 */
export function fingerprintOf(def: FacadeDefinition): string {
  const nodes = [...def.nodes].sort((a, b) => (a.name < b.name ? -1 : 1)).map((n) => ({
    name: n.name,
    kind: kindOf(n),
    after: [...(n.after ?? [])].sort(),
    branches: [...(n.branches ?? [])].sort(),
    events: n.kind === 'wait' ? [...n.events].sort() : [],
    topic: 'topic' in n ? (n.topic ?? '') : '',
  }));
  return JSON.stringify({ mode: def.mode, rollbackTopic: def.rollbackTopic, nodes });
}

interface Shape { mode: string; rollbackTopic: string; nodes: { name: string }[] }

/** The first difference between a stored fingerprint and this process's, in words. */
export function firstDifference(stored: string, here: string): string {
  const a = JSON.parse(stored) as Shape;
  const b = JSON.parse(here) as Shape;
  if (a.mode !== b.mode) return `mode: ${a.mode} stored, ${b.mode} here`;
  if (a.rollbackTopic !== b.rollbackTopic) return `rollback topic: ${a.rollbackTopic} stored, ${b.rollbackTopic} here`;
  const byName = (nodes: { name: string }[]) => new Map(nodes.map((n) => [n.name, JSON.stringify(n)]));
  const [was, now] = [byName(a.nodes), byName(b.nodes)];
  for (const [name, node] of was) {
    if (!now.has(name)) return `node ${name}: stored, missing here`;
    if (now.get(name) !== node) return `node ${name}: ${node} stored, ${now.get(name)!} here`;
  }
  for (const name of now.keys()) if (!was.has(name)) return `node ${name}: here, not in the stored graph`;
  return 'none found';
}
