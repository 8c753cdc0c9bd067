// One saga: status, input, output, error, what it waits for, its graph with the path taken, the
// timeline of its history, and the actions (cancel, retry compensation, send an event).
import { api, sagaPath } from '../api.js';
import { confirmAction } from '../confirm.js';
import { every, fmtDuration, fmtTime, fromNow, h, json, statusBadge } from '../dom.js';
import { drawGraph, legend } from '../graph.js';

const REFRESH_MS = 1500;
const LIVE = new Set(['RUNNING', 'COMPENSATING']);

export function sagaPage(root, id) {
  const head = h('div', { id: 'saga-head' });
  const actions = h('div', { class: 'actions', id: 'actions' });
  const summary = h('dl', { class: 'summary', id: 'summary' });
  const waiting = h('section', { id: 'waiting' });
  const graph = h('div', { class: 'graph', id: 'graph' });
  const nodes = h('tbody');
  const timeline = h('tbody');
  const input = h('pre', { id: 'input' });
  const output = h('pre', { id: 'output' });
  const error = h('p', { class: 'error', hidden: true, id: 'load-error' });
  root.append(
    h('p', {}, h('a', { href: '#/sagas' }, '‹ All sagas')),
    head, error, actions, summary, waiting,
    h('section', {}, h('h2', {}, 'Graph'), legend(), graph),
    h('section', {}, h('h2', {}, 'Nodes'), h('table', { class: 'list', id: 'nodes' },
      h('thead', {}, h('tr', {}, ['Node', 'Kind', 'Visit', 'Status', 'Attempts', 'Started', 'Ended', 'Took', 'Error'].map((t) => h('th', {}, t)))), nodes)),
    h('div', { class: 'columns' },
      h('section', {}, h('h2', {}, 'Input'), input),
      h('section', {}, h('h2', {}, 'Output'), output)),
    h('section', {}, h('h2', {}, 'Timeline'), h('table', { class: 'list', id: 'timeline' },
      h('thead', {}, h('tr', {}, ['#', 'At', '+', 'Event', 'Node', 'Took', 'Detail', 'Pod'].map((t) => h('th', {}, t)))), timeline)),
  );

  let shownMermaid;
  let shownRevision;
  let poll;
  const show = (d) => {
    const { saga } = d;
    if (saga.revision === shownRevision) return;
    shownRevision = saga.revision;
    root.dataset.status = saga.status;
    head.replaceChildren(h('h1', {}, 'Saga ', h('code', {}, saga.requestId), ' ', statusBadge(saga.status)),
      h('p', {}, h('a', { href: `#/sagas?facade=${encodeURIComponent(saga.facade)}` }, saga.facade), ` version ${saga.version} · ${saga.mode}`,
        LIVE.has(saga.status) ? h('span', { class: 'muted' }, ' · refreshing live') : ''));
    actions.replaceChildren(...actionButtons(d, (next) => { show(next); restart(); }));
    summary.replaceChildren(...summaryOf(d));
    waiting.replaceChildren(...waitingOf(d));
    nodes.replaceChildren(...nodeRows(d));
    timeline.replaceChildren(...timelineRows(saga, d.timeline));
    input.textContent = json(saga.input);
    output.textContent = saga.output === undefined ? '(none)' : json(saga.output);
    const mermaid = d.graph?.mermaid ?? '';
    if (mermaid !== shownMermaid) {
      shownMermaid = mermaid;
      void drawGraph(graph, mermaid);
    }
  };
  const load = async () => {
    const d = await api(sagaPath(id));
    error.hidden = true;
    show(d);
    // A finished saga changes only through an action here, which shows its answer.
    if (!LIVE.has(d.saga.status)) poll?.stop();
  };
  const showError = (err) => { error.textContent = err.status === 404 ? `No saga ${id}.` : `Could not load saga ${id}: ${err.message}`; error.hidden = false; };
  const restart = () => { poll?.stop(); poll = every(REFRESH_MS, load, showError); };
  restart();
  return { stop: () => poll?.stop() };
}

function actionButtons({ saga, graph }, done) {
  const id = saga.requestId;
  const buttons = [];
  if (saga.status === 'RUNNING') {
    buttons.push(h('button', { type: 'button', class: 'danger', id: 'action-cancel', onclick: () => void confirmAction({
      title: `Cancel saga ${id}?`,
      text: 'Every step it has run is compensated, in reverse order. This cannot be undone.',
      confirm: 'Cancel the saga',
      action: () => api(`${sagaPath(id)}/cancel`, { method: 'POST' }),
    }).then((d) => d && done(d)) }, 'Cancel…'));
    buttons.push(h('button', { type: 'button', id: 'action-event', onclick: () => void sendEvent(id, graph).then((d) => d && done(d)) }, 'Send event…'));
  }
  if (saga.status === 'COMPENSATION_FAILED') {
    buttons.push(h('button', { type: 'button', class: 'danger', id: 'action-retry', onclick: () => void confirmAction({
      title: `Retry the compensation of ${id}?`,
      text: 'The steps not yet compensated are compensated again, with a fresh set of attempts.',
      confirm: 'Retry compensation',
      action: () => api(`${sagaPath(id)}/retry-compensation`, { method: 'POST' }),
    }).then((d) => d && done(d)) }, 'Retry compensation…'));
  }
  if (buttons.length === 0) buttons.push(h('span', { class: 'muted' }, `No action: the saga is ${saga.status}.`));
  return buttons;
}

function sendEvent(id, graph) {
  const accepted = [...new Set((graph?.waiting ?? []).flatMap((w) => w.events))];
  const name = h('input', { name: 'event', id: 'event-name', required: true, list: 'event-names', autocomplete: 'off', value: accepted[0] ?? '' });
  const payload = h('textarea', { name: 'payload', id: 'event-payload', rows: 5, cols: 40 }, '{}');
  const extra = h('div', { class: 'fields' },
    h('label', {}, 'Event ', name), h('datalist', { id: 'event-names' }, accepted.map((e) => h('option', { value: e }))),
    h('label', {}, 'Payload (a JSON object) ', payload),
    accepted.length ? h('p', { class: 'muted' }, `Waits now for: ${accepted.join(', ')}`) : '');
  // One key per dialog: a double submit is one event.
  // getRandomValues, not randomUUID: the console may be served over plain HTTP from another host (no secure context).
  const key = `console:${[...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  return confirmAction({
    title: `Send an event to ${id}?`,
    text: 'The event is recorded with the saga and taken by a wait that accepts it.',
    confirm: 'Send the event',
    extra,
    action: () => {
      let body;
      try {
        body = JSON.parse(payload.value || '{}');
      } catch (err) {
        throw new Error(`payload: not JSON (${err.message})`);
      }
      return api(`${sagaPath(id)}/events`, { method: 'POST', body: { event: name.value.trim(), payload: body, idempotency_key: key } });
    },
  });
}

function summaryOf({ saga, leftAlone }) {
  const item = (term, ...value) => [h('dt', {}, term), h('dd', {}, ...value)];
  return [
    ...item('Created', fmtTime(saga.createdAt)),
    ...item('Updated', fmtTime(saga.updatedAt), ` (${fmtDuration(Date.parse(saga.updatedAt) - Date.parse(saga.createdAt))} after it started)`),
    ...(saga.deadline ? item('Deadline', fmtTime(saga.deadline), LIVE.has(saga.status) ? ` (${fromNow(saga.deadline)})` : '') : []),
    ...(saga.owner ? item('Owner', saga.owner) : []),
    ...(saga.error ? item('Error', h('span', { class: 'error', id: 'saga-error' }, saga.errorCode ? `${saga.errorCode}: ${saga.error}` : saga.error)) : []),
    ...(leftAlone ? item('Left alone', leftAlone) : []),
  ];
}

function waitingOf({ graph }) {
  const waits = graph?.waiting ?? [];
  if (waits.length === 0) return [];
  return [h('h2', {}, 'Waiting for'), h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, ['Node', 'Events', 'Until'].map((t) => h('th', {}, t)))),
    h('tbody', {}, waits.map((w) => h('tr', { dataset: { node: w.node } },
      h('td', {}, w.node), h('td', {}, w.events.join(', ') || '(a timer)'),
      h('td', {}, w.until ? `${fmtTime(w.until)} (${fromNow(w.until)})` : 'no timeout')))))];
}

function nodeRows({ graph }) {
  if (!graph) return [h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'Unknown to this instance.'))];
  return graph.nodes.flatMap((n) => (n.visits.length === 0
    ? [h('tr', { class: 'muted', dataset: { node: n.name } }, h('td', {}, n.name), h('td', {}, n.kind), h('td', { colspan: 7 }, 'not reached'))]
    : n.visits.map((v) => h('tr', { dataset: { node: n.name, status: v.status } },
      h('td', {}, n.name), h('td', {}, n.kind), h('td', {}, String(v.visit)), h('td', {}, statusBadge(v.status)), h('td', {}, String(v.attempts)),
      h('td', {}, fmtTime(v.startedAt)), h('td', {}, fmtTime(v.endedAt)),
      h('td', {}, v.startedAt && v.endedAt ? fmtDuration(Date.parse(v.endedAt) - Date.parse(v.startedAt)) : ''),
      h('td', { class: 'error-cell' }, v.error ?? '')))));
}

function timelineRows(saga, entries) {
  const start = Date.parse(saga.createdAt);
  return entries.map((e) => h('tr', { dataset: { type: e.type } },
    h('td', {}, String(e.seq)), h('td', {}, fmtTime(e.at)), h('td', { class: 'muted' }, fmtDuration(Date.parse(e.at) - start)),
    h('td', {}, e.type), h('td', {}, e.step ?? ''),
    h('td', { class: 'duration' }, e.durationMs !== undefined ? `${e.measured} ${fmtDuration(e.durationMs)}` : ''),
    h('td', { class: 'detail' }, e.detail ?? ''), h('td', { class: 'muted' }, e.podId ?? '')));
}
