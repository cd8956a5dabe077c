// The overview above the rows: a histogram of the shown execs over the window, stacked by result
// or origin (plain SVG drawn here), which a drag zooms into; and the counts by namespace →
// workload → pod, each with a sparkline over the same bins, a click filtering on it.
import { el, isoOf, msOf, svg } from './format.js';

const BINS = 60;
const WIDTH = 600;
const HEIGHT = 80;

const STACKS = {
  result: { keyOf: (e) => (e.retval === 0 ? 'ok' : 'failed'), keys: ['ok', 'failed'] },
  origin: { keyOf: (e) => e.origin ?? 'host', keys: ['host', 'init', 'workload', 'exec', 'probe', 'debug'] },
};

/** The window the histogram spans: the filter's since/until, else the events' own span. */
export function windowOf(events, since, until) {
  let from = since === '' ? Infinity : Date.parse(since);
  let to = until === '' ? -Infinity : Date.parse(until);
  if (since === '' || until === '') {
    for (const e of events) {
      const ms = msOf(e.time);
      if (since === '' && ms < from) from = ms;
      if (until === '' && ms + 1 > to) to = ms + 1;
    }
  }
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
    const now = Date.now();
    return { from: Number.isFinite(from) ? from : now - 60_000, to: Number.isFinite(from) ? from + 60_000 : now };
  }
  return { from, to };
}

/** The bins' edges, whole milliseconds (BINS + 1 of them), so that each bin is exactly a since/until query. */
function edgesOf({ from, to }) {
  return Array.from({ length: BINS + 1 }, (_, i) => from + Math.floor((i * (to - from)) / BINS));
}

/** Bin index of a time within the window, or -1 outside it. */
function binOf(ms, edges) {
  if (ms < edges[0] || ms >= edges[BINS]) return -1;
  let bin = Math.min(BINS - 1, Math.floor(((ms - edges[0]) / (edges[BINS] - edges[0])) * BINS));
  while (ms < edges[bin]) bin--;
  while (ms >= edges[bin + 1]) bin++;
  return bin;
}

/** Counts per bin and stack key, and per namespace → workload → pod with bins of their own. */
function countsOf(events, range, stackBy) {
  const { keyOf } = STACKS[stackBy];
  const bins = Array.from({ length: BINS }, () => new Map());
  const groups = new Map();
  const edges = edgesOf(range);
  const bump = (map, name, filter, bin) => {
    let g = map.get(name);
    if (g === undefined) map.set(name, (g = { name, filter, count: 0, bins: new Array(BINS).fill(0), children: new Map() }));
    g.count++;
    g.bins[bin]++;
    return g.children;
  };
  for (const e of events) {
    const bin = binOf(msOf(e.time), edges);
    if (bin < 0) continue;
    const key = keyOf(e);
    bins[bin].set(key, (bins[bin].get(key) ?? 0) + 1);
    const ns = e.namespace ?? '(host)';
    const nsFilter = e.namespace === null ? null : { namespace: e.namespace };
    const workloads = bump(groups, ns, nsFilter, bin);
    const wl = e.workload ? `${e.workload.kind}/${e.workload.name}` : e.pod === null ? '(no pod)' : '(bare pod)';
    // A workload is a filter of the API (KIND/NAME); no workload is none.
    const pods = bump(workloads, wl, e.workload ? { namespace: e.namespace, workload: wl } : null, bin);
    if (e.pod !== null) bump(pods, e.pod, { namespace: e.namespace, pod: e.pod }, bin);
  }
  return { bins, groups };
}

function sparkline(bins) {
  const max = Math.max(1, ...bins);
  const points = bins.map((n, i) => `${(i / (BINS - 1)) * 60},${14 - (n / max) * 13}`).join(' ');
  const s = svg('svg', { class: 'spark', viewBox: '0 0 60 15', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  s.append(svg('polyline', { points }));
  return s;
}

/** Draws the histogram into `histogram` (an <svg>), its legend, and the group list. */
export function drawOverview({ histogram, legend, groups, axisFrom, axisTo }, events, range, stackBy, onFilter) {
  const { keys } = STACKS[stackBy];
  const { bins, groups: tree } = countsOf(events, range, stackBy);
  const totals = bins.map((m) => [...m.values()].reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const width = WIDTH / BINS;
  const edges = edgesOf(range);
  const children = [];
  bins.forEach((counts, i) => {
    const g = svg('g', { class: 'bin', 'data-count': totals[i], 'data-start': isoOf(edges[i]), 'data-end': isoOf(edges[i + 1]) });
    let y = HEIGHT;
    for (const key of keys) {
      const n = counts.get(key) ?? 0;
      if (n === 0) continue;
      const h = (n / max) * (HEIGHT - 2);
      y -= h;
      g.append(svg('rect', { class: `stack-${key}`, x: i * width + 0.5, y, width: Math.max(0.5, width - 1), height: h, 'data-key': key, 'data-count': n }));
    }
    const title = svg('title', {});
    title.textContent = `${isoOf(edges[i])}: ${totals[i]} execs${[...counts].map(([k, n]) => `, ${k} ${n}`).join('')}`;
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

  const list = (map, depth) => {
    const items = [...map.values()].sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1)).slice(0, depth === 0 ? 12 : 6);
    return items.map((g) => {
      const li = el('li', `group depth-${depth}`);
      const name = g.filter === null ? el('span', 'name', g.name) : el('button', 'name', g.name);
      if (name.tagName === 'BUTTON') {
        name.type = 'button';
        name.title = `filter on ${Object.entries(g.filter).map(([k, v]) => `${k}=${v}`).join(' ')}`;
        name.addEventListener('click', () => onFilter(g.filter));
      }
      li.append(name, ' ', el('span', 'count', String(g.count)), sparkline(g.bins));
      if (g.children.size > 0 && depth < 2) {
        const ul = el('ul');
        ul.append(...list(g.children, depth + 1));
        li.append(ul);
      }
      return li;
    });
  };
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
