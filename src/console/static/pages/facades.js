// Facades: every version this instance has (and those only the store knows), its graph and nodes,
// and how many of its sagas are in each status (each count links to the filtered list).
import { api } from '../api.js';
import { h } from '../dom.js';
import { drawGraph } from '../graph.js';

const STATUSES = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];

export function facadesPage(root) {
  const list = h('div', { id: 'facades' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', {}, 'Facades'), list);
  let stopped = false;
  api('/api/facades').then(({ facades }) => {
    if (stopped) return;
    list.replaceChildren(...facades.map(card));
  }, (err) => {
    list.replaceChildren(h('p', { class: 'error' }, `Could not load the facades: ${err.message}`));
  });
  return { stop: () => { stopped = true; } };
}

function card(f) {
  const graph = h('div', { class: 'graph' });
  void drawGraph(graph, f.mermaid);
  const link = (status) => `#/sagas?${new URLSearchParams({ facade: f.name, status })}`;
  return h('section', { class: 'card', dataset: { facade: f.name, version: String(f.version) } },
    h('h2', {}, f.name, h('span', { class: 'muted' }, ` version ${f.version} · ${f.mode}`)),
    h('p', {}, `${f.runningSagas} unfinished`, f.runningSagas === 0 && f.mode !== 'unknown' ? ' (this version can be retired)' : '',
      f.mode === 'unknown' ? ' · only the store knows this version: no instance here has it' : ''),
    h('table', { class: 'counts' }, h('tbody', {}, h('tr', {}, STATUSES.map((s) => h('td', { dataset: { status: s } },
      h('a', { href: link(s) }, h('span', { class: `badge status-${s.toLowerCase()}` }, s), ' ', h('b', { class: 'count' }, String(f.counts[s] ?? 0)))))))),
    graph,
    f.nodes.length ? h('details', {}, h('summary', {}, `${f.nodes.length} nodes`), h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Node', 'Kind', 'After', 'Branches', 'Events', 'Topic', 'Compensable'].map((t) => h('th', {}, t)))),
      h('tbody', {}, f.nodes.map((n) => h('tr', {},
        h('td', {}, n.name), h('td', {}, n.kind), h('td', {}, n.after.join(', ')), h('td', {}, (n.branches ?? []).join(', ')),
        h('td', {}, (n.events ?? []).join(', ')), h('td', {}, n.topic ?? ''), h('td', {}, n.compensable ? 'yes' : 'no')))))) : '');
}
