// Sagas: filters (facade, status, created time range), paging, refreshed live while open.
import { api } from '../api.js';
import { every, fmtTime, h, statusBadge } from '../dom.js';

const STATUSES = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];
const REFRESH_MS = 2000;

/** `params`: the filters from the hash (facade, status, created_from, created_to, page_size), so a filtered list can be linked to. */
export function sagasPage(root, params) {
  // Page tokens of the pages before this one, to go back to newer sagas.
  const tokens = [];
  let token;
  const rows = h('tbody');
  const status = h('p', { class: 'muted', id: 'refresh-status' });
  const error = h('p', { class: 'error', hidden: true });
  const newer = h('button', { type: 'button', disabled: true, onclick: () => { token = tokens.pop(); void load(); } }, '‹ Newer');
  const older = h('button', { type: 'button', disabled: true }, 'Older ›');
  let next;
  older.addEventListener('click', () => { tokens.push(token); token = next; void load(); });
  const live = h('input', { type: 'checkbox', checked: true, id: 'live' });

  root.append(
    h('h1', {}, 'Sagas'),
    filters(params),
    h('div', { class: 'toolbar' }, h('label', {}, live, ' refresh live'), status, h('span', { class: 'spacer' }), newer, older),
    error,
    h('table', { class: 'list', id: 'sagas' },
      h('thead', {}, h('tr', {}, ['Request id', 'Facade', 'Version', 'Mode', 'Status', 'Created', 'Updated', 'Error'].map((t) => h('th', {}, t)))),
      rows),
  );

  async function load() {
    const q = new URLSearchParams(params);
    if (token) q.set('page_token', token);
    const page = await api(`/api/sagas?${q}`);
    error.hidden = true;
    next = page.nextPageToken;
    older.disabled = !next;
    newer.disabled = tokens.length === 0 && !token;
    rows.replaceChildren(...page.sagas.map(row));
    if (page.sagas.length === 0) rows.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No saga matches.')));
    status.textContent = `${page.sagas.length} shown · updated ${new Date().toLocaleTimeString()}`;
  }
  const showError = (err) => { error.textContent = `Could not load the sagas: ${err.message}`; error.hidden = false; };
  let poll = every(REFRESH_MS, load, showError);
  live.addEventListener('change', () => {
    poll.stop();
    poll = live.checked ? every(REFRESH_MS, load, showError) : { stop() {} };
  });
  return { stop: () => poll.stop() };
}

function row(s) {
  const link = `#/sagas/${encodeURIComponent(s.requestId)}`;
  return h('tr', { dataset: { requestId: s.requestId, status: s.status } },
    h('td', {}, h('a', { href: link }, s.requestId)),
    h('td', {}, s.facade),
    h('td', {}, String(s.version)),
    h('td', {}, s.mode),
    h('td', {}, statusBadge(s.status)),
    h('td', {}, fmtTime(s.createdAt)),
    h('td', {}, fmtTime(s.updatedAt)),
    h('td', { class: 'error-cell' }, s.error ?? (s.leftAlone ? 'left alone by this instance' : '')));
}

/** The filter form: applying it rewrites the hash, which renders the page again from the first page. */
function filters(params) {
  // The facade in the address is an option at once: applying before the names arrive keeps it.
  const chosen = params.get('facade');
  const facade = h('select', { name: 'facade', id: 'filter-facade' }, h('option', { value: '' }, 'any facade'),
    chosen ? h('option', { value: chosen, selected: true }, chosen) : '');
  void api('/api/facades?counts=false').then(({ facades }) => {
    for (const name of [...new Set(facades.map((f) => f.name))].sort()) if (name !== chosen) facade.append(h('option', { value: name }, name));
  }, () => undefined);
  const status = h('select', { name: 'status', id: 'filter-status' }, h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === params.get('status') }, s)));
  const from = h('input', { type: 'datetime-local', name: 'created_from', id: 'filter-from', step: 1, value: localInput(params.get('created_from')) });
  const to = h('input', { type: 'datetime-local', name: 'created_to', id: 'filter-to', step: 1, value: localInput(params.get('created_to')) });
  const pageSize = params.get('page_size') ?? '20';
  const sizes = [...new Set(['20', '50', '100', '200', pageSize])].sort((a, b) => a - b);
  const size = h('select', { name: 'page_size', id: 'filter-size' }, sizes.map((n) => h('option', { value: n, selected: n === pageSize }, `${n} a page`)));
  const form = h('form', { class: 'filters', id: 'filters' },
    h('label', {}, 'Facade ', facade), h('label', {}, 'Status ', status),
    h('label', {}, 'Created from ', from), h('label', {}, 'to ', to), size,
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', onclick: () => { location.hash = '#/sagas'; } }, 'Clear'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (facade.value) q.set('facade', facade.value);
    if (status.value) q.set('status', status.value);
    // datetime-local is the browser's local time; the API takes instants.
    if (from.value) q.set('created_from', new Date(from.value).toISOString());
    if (to.value) q.set('created_to', new Date(to.value).toISOString());
    if (size.value !== '20') q.set('page_size', size.value);
    location.hash = `#/sagas${q.size ? `?${q}` : ''}`;
  });
  return form;
}

/** An ISO instant as a datetime-local value (local time, no zone). */
function localInput(iso) {
  if (!iso || Number.isNaN(Date.parse(iso))) return undefined;
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}
