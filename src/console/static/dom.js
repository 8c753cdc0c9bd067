// Elements built from data with textContent only: saga inputs, outputs and errors are never parsed as HTML.

/** h('a', { href, class, onclick, dataset: {...} }, child, ...): children are nodes, strings or arrays of them. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status.toLowerCase()}` }, status);
}

/** An instant as local date and time with milliseconds (sagas are told apart by them). */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '';
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(a < 10_000 ? 2 : 1)} s`;
  if (a < 3_600_000) return `${sign}${Math.floor(a / 60_000)} min ${Math.round((a % 60_000) / 1000)} s`;
  return `${sign}${Math.floor(a / 3_600_000)} h ${Math.round((a % 3_600_000) / 60_000)} min`;
}

/** "in 4 min 10 s" / "12 s ago", from now. */
export function fromNow(iso) {
  const ms = Date.parse(iso) - Date.now();
  return ms >= 0 ? `in ${fmtDuration(ms)}` : `${fmtDuration(-ms)} ago`;
}

export function json(value) {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}

/**
 * Runs `fn` now and every `ms` while the page shows it (not while the tab is hidden, nor two at
 * once); a failure goes to onError and the polling goes on; stop() ends it. Polling keeps the server simple: one GET per open page.
 */
export function every(ms, fn, onError) {
  let timer;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (err) {
        onError(err);
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  void tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
