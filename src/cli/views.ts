import { duration, orDash, paint, stepStatus, table, type Style } from './render';
import type { Facade, ListSagasResponse, Saga, Visit } from './types';

/** What the text (non --json) output of each command looks like. */

export function facadesView(facades: Facade[], style: Style, graphs: boolean): string {
  const rows = facades.map((f) => [f.name, String(f.version), f.mode, String(f.running_sagas), f.nodes.map((n) => n.name).join(', ') || '-']);
  const text = table(['FACADE', 'VERSION', 'MODE', 'UNFINISHED', 'NODES'], rows, style);
  if (!graphs) return text;
  return [text, ...facades.filter((f) => f.mermaid).map((f) => `\n${f.name} v${f.version}\n${f.mermaid.trimEnd()}`)].join('\n');
}

export function sagaListView(page: ListSagasResponse, style: Style): string {
  if (page.sagas.length === 0) return 'no sagas';
  const rows = page.sagas.map((s) => [s.request_id, s.facade, String(s.version), s.status, s.created_at, s.updated_at, orDash(s.error)]);
  const text = table(['REQUEST ID', 'FACADE', 'VERSION', 'STATUS', 'CREATED', 'UPDATED', 'ERROR'], rows, style, 3);
  return page.next_page_token ? `${text}\n\nmore: --page-token ${page.next_page_token}` : text;
}

interface PathEntry { label: string; kind: string; visit: Visit }

/**
 * The visits in the order they started (a loop's later visits as node#2, ...); visits that never
 * started (skipped by a branch) after them, in the graph's order.
 */
export function pathOf(saga: Saga): PathEntry[] {
  const entries = saga.nodes.flatMap((n, order) => n.visits.map((visit) => ({ label: visit.visit > 1 ? `${n.name}#${visit.visit}` : n.name, kind: n.kind, visit, order })));
  const started = entries.filter((e) => e.visit.started_at).sort((a, b) => Date.parse(a.visit.started_at) - Date.parse(b.visit.started_at) || a.order - b.order);
  return [...started, ...entries.filter((e) => !e.visit.started_at)];
}

export function sagaView(saga: Saga, style: Style): string {
  const field = (name: string, value: string) => `${name.padEnd(9)} ${value}`;
  const lines = [
    field('saga', `${saga.request_id}  ${saga.facade} v${saga.version} (${saga.mode})`),
    field('status', paint(saga.status, saga.status, style) + (saga.error_code ? ` (${saga.error_code})` : '')),
    ...(saga.error ? [field('error', saga.error)] : []),
    field('created', saga.created_at),
    field('updated', saga.updated_at),
    ...(saga.deadline ? [field('deadline', saga.deadline)] : []),
    ...(saga.owner ? [field('owner', saga.owner)] : []),
    field('input', orDash(saga.input_json)),
    field('output', orDash(saga.output_json)),
  ];
  if (saga.left_alone) lines.push(field('note', saga.left_alone));
  const path = pathOf(saga);
  if (path.length > 0) {
    lines.push('', 'path');
    const rows = path.map((e, i) => [String(i + 1), e.label, e.kind, stepStatus(e.visit.status), String(e.visit.attempts), orDash(e.visit.started_at), orDash(duration(e.visit.started_at, e.visit.ended_at)), orDash(e.visit.error)]);
    lines.push(indent(table(['#', 'NODE', 'KIND', 'STATUS', 'ATTEMPTS', 'STARTED', 'TOOK', 'ERROR'], rows, narrower(style, 2), 3)));
  }
  if (saga.waiting.length > 0) {
    lines.push('', 'waiting for');
    for (const w of saga.waiting) lines.push(`  ${w.node}: ${w.events.length ? `event ${w.events.join(' or ')}` : 'its timer'}${w.until ? `, until ${w.until}` : ', no timeout'}`);
  }
  return lines.join('\n');
}

const indent = (text: string) => text.split('\n').map((l) => `  ${l}`).join('\n');
const narrower = (style: Style, by: number): Style => ({ ...style, width: style.width === undefined ? undefined : style.width - by });
