// What the page shows, computed from the events loaded (in the worker, worker.js): the quick
// toggles, the histogram's window and bins, and the counts by namespace → workload → pod with
// their sparklines' bins. Pure functions of plain data: no DOM here.
import { msOf, workloadText } from './format.js';

/** Bars of the histogram (and points of each sparkline). */
export const BINS = 60;
/** The counts list the namespaces with the most execs, and below each the workloads and pods with the most. */
const LISTED = [12, 6, 6];

/** The quick toggles: each keeps the loaded events a responder narrows to most. */
export const TOGGLES = {
  hideProbes: (e) => e.origin !== 'probe',
  failures: (e) => e.retval !== 0,
  sessions: (e) => e.sessionExecId !== null && e.sessionExecId !== undefined,
  unusual: (e) => e.drift === true || e.fileless === true,
};

/** The events that pass the toggles that are on. */
export function visibleOf(events, on) {
  const checks = Object.entries(TOGGLES).filter(([name]) => on[name]).map(([, check]) => check);
  return checks.length === 0 ? events : events.filter((e) => checks.every((check) => check(e)));
}

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

/**
 * What the overview draws, small enough to hand to the page's main thread: per bin its count by
 * stack key, and the most active namespaces, their workloads and pods, each with its count, its
 * bins and its filter (null: not a filter of the API).
 */
export function overviewOf(events, range, stackBy) {
  const { keyOf, keys } = STACKS[stackBy];
  const bins = Array.from({ length: BINS }, () => Object.fromEntries(keys.map((key) => [key, 0])));
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
    bins[bin][key] = (bins[bin][key] ?? 0) + 1;
    const ns = e.namespace ?? '(host)';
    const nsFilter = e.namespace === null ? null : { namespace: e.namespace };
    const workloads = bump(groups, ns, nsFilter, bin);
    const wl = workloadText(e.workload);
    // A workload is a filter of the API (KIND/NAME); no workload is none.
    const pods = bump(workloads, wl ?? (e.pod === null ? '(no pod)' : '(bare pod)'), wl === null ? null : { namespace: e.namespace, workload: wl }, bin);
    if (e.pod !== null) bump(pods, e.pod, { namespace: e.namespace, pod: e.pod }, bin);
  }
  const listed = (map, depth) => [...map.values()]
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1))
    .slice(0, LISTED[depth])
    .map(({ children, ...g }) => ({ ...g, children: depth + 1 < LISTED.length ? listed(children, depth + 1) : [] }));
  return { range, edges, keys, bins, groups: listed(groups, 0) };
}
