// Flow graphs drawn by Mermaid (served from node_modules, see src/console/static-files.ts).
import { h } from './dom.js';

let ready;
let seq = 0;

function mermaid() {
  ready ??= new Promise((resolve, reject) => {
    const found = () => {
      if (!globalThis.mermaid) return reject(new Error('mermaid did not load (/console/vendor/mermaid.min.js)'));
      // strict: labels are text, never HTML or script, whatever a node is called.
      globalThis.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default', flowchart: { useMaxWidth: true } });
      resolve(globalThis.mermaid);
    };
    if (globalThis.mermaid || document.readyState === 'complete') found();
    else window.addEventListener('load', found, { once: true });
  });
  return ready;
}

/**
 * Draws Mermaid `text` into `container` (replacing what it held). The saga graphs' classes (done,
 * current, failed, compensated, skipped) end up on the nodes' SVG groups, which CSS and tests read.
 */
export async function drawGraph(container, text) {
  if (!text) {
    container.replaceChildren(h('p', { class: 'muted' }, 'No graph: this instance does not have the facade version.'));
    return;
  }
  try {
    const { svg } = await (await mermaid()).render(`graph-${++seq}`, text);
    container.innerHTML = svg; // Mermaid's own sanitised output (securityLevel strict)
    container.dataset.rendered = 'true';
  } catch (err) {
    container.replaceChildren(h('p', { class: 'error' }, `The graph could not be drawn: ${err.message}`), h('pre', {}, text));
  }
}

export function legend() {
  return h('p', { class: 'legend' }, ['done', 'current', 'failed', 'compensated', 'skipped'].map((c) => h('span', { class: `key key-${c}` }, c)));
}
