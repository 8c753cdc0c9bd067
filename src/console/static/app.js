// The console: hash routes, one page at a time; each page returns a stop() for its live refresh.
import { facadesPage } from './pages/facades.js';
import { sagaPage } from './pages/saga.js';
import { sagasPage } from './pages/sagas.js';

const ROUTES = [
  [/^#\/sagas\/([^?/]+)$/, (root, m) => sagaPage(root, decodeURIComponent(m[1])), 'sagas'],
  [/^#\/sagas(?:\?(.*))?$/, (root, m) => sagasPage(root, new URLSearchParams(m[1] ?? '')), 'sagas'],
  [/^#\/facades$/, (root) => facadesPage(root), 'facades'],
];

let current;

function render() {
  current?.stop?.();
  const hash = location.hash || '#/sagas';
  const root = document.getElementById('app');
  root.replaceChildren();
  const route = ROUTES.map(([re, page, nav]) => [hash.match(re), page, nav]).find(([m]) => m);
  if (!route) {
    root.textContent = `No page ${hash}`;
    return;
  }
  const [m, page, nav] = route;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === nav);
  current = page(root, m);
}

window.addEventListener('hashchange', render);
render();
