// The overview above the rows: a histogram of the shown execs over the window, stacked by result
// or origin (plain SVG drawn here), which a drag zooms into; and the counts by namespace →
// workload → pod, each with a sparkline over the same bins, a click filtering on it. What it
// draws is counted in the worker (view.js overviewOf): here only the drawing.
import { el, isoOf, svg } from './format.js';
import { BINS } from './view.js';

const WIDTH = 600;
const HEIGHT = 80;

function sparkline(bins) {
  const max = Math.max(1, ...bins);
  const points = bins.map((n, i) => `${(i / (BINS - 1)) * 60},${14 - (n / max) * 13}`).join(' ');
  const s = svg('svg', { class: 'spark', viewBox: '0 0 60 15', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  s.append(svg('polyline', { points }));
  return s;
}

/** Draws `overview` (view.js overviewOf) into `histogram` (an <svg>), its legend, and the group list. */
export function drawOverview({ histogram, legend, groups, axisFrom, axisTo }, { range, edges, keys, bins, groups: tree }, onFilter) {
  const totals = bins.map((counts) => Object.values(counts).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const width = WIDTH / BINS;
  const children = [];
  bins.forEach((counts, i) => {
    const g = svg('g', { class: 'bin', 'data-count': totals[i], 'data-start': isoOf(edges[i]), 'data-end': isoOf(edges[i + 1]) });
    let y = HEIGHT;
    for (const key of keys) {
      const n = counts[key] ?? 0;
      if (n === 0) continue;
      const h = (n / max) * (HEIGHT - 2);
      y -= h;
      g.append(svg('rect', { class: `stack-${key}`, x: i * width + 0.5, y, width: Math.max(0.5, width - 1), height: h, 'data-key': key, 'data-count': n }));
    }
    const title = svg('title', {});
    title.textContent = `${isoOf(edges[i])}: ${totals[i]} execs${Object.entries(counts).filter(([, n]) => n > 0).map(([k, n]) => `, ${k} ${n}`).join('')}`;
    g.append(title);
    children.push(g);
  });
  children.push(svg('rect', { class: 'selection', x: 0, y: 0, width: 0, height: HEIGHT }));
  histogram.replaceChildren(...children);
  axisFrom.textContent = isoOf(range.from).replace('T', ' ');
  axisTo.textContent = isoOf(range.to).replace('T', ' ');
  legend.replaceChildren(...keys.map((key) => {
    const span = el('span', 'legend-item');
    span.append(el('span', `swatch stack-${key}`), ` ${key}`);
    return span;
  }));

  const list = (items, depth) => items.map((g) => {
    const li = el('li', `group depth-${depth}`);
    const name = g.filter === null ? el('span', 'name', g.name) : el('button', 'name', g.name);
    if (name.tagName === 'BUTTON') {
      name.type = 'button';
      name.title = `filter on ${Object.entries(g.filter).map(([k, v]) => `${k}=${v}`).join(' ')}`;
      name.addEventListener('click', () => onFilter(g.filter));
    }
    li.append(name, ' ', el('span', 'count', String(g.count)), sparkline(g.bins));
    if (g.children.length > 0) {
      const ul = el('ul');
      ul.append(...list(g.children, depth + 1));
      li.append(ul);
    }
    return li;
  });
  groups.replaceChildren(...list(tree, 0));
}

/** Lets a drag over the histogram pick a time range: onZoom(sinceIso, untilIso). */
export function dragToZoom(histogram, rangeOf, onZoom) {
  let start = null;
  const xOf = (pointer) => {
    const box = histogram.getBoundingClientRect();
    return Math.min(1, Math.max(0, (pointer.clientX - box.left) / box.width));
  };
  const selection = () => histogram.querySelector('.selection');
  histogram.addEventListener('pointerdown', (pointer) => {
    start = xOf(pointer);
    histogram.setPointerCapture(pointer.pointerId);
  });
  histogram.addEventListener('pointermove', (pointer) => {
    if (start === null) return;
    const x = xOf(pointer);
    selection()?.setAttribute('x', String(Math.min(start, x) * WIDTH));
    selection()?.setAttribute('width', String(Math.abs(x - start) * WIDTH));
  });
  // A cancelled drag (the browser took the pointer over, for a scroll or a gesture) zooms nowhere.
  const end = () => {
    start = null;
    selection()?.setAttribute('width', '0');
  };
  histogram.addEventListener('pointercancel', end);
  histogram.addEventListener('pointerup', (pointer) => {
    if (start === null) return;
    const [a, b] = [start, xOf(pointer)].sort((p, q) => p - q);
    end();
    if (b - a < 0.005) return;
    const { from, to } = rangeOf();
    onZoom(isoOf(Math.floor(from + a * (to - from))), isoOf(Math.ceil(from + b * (to - from))));
  });
}
