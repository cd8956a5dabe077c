// The page's worker (a module worker, started by app.js): it fetches the rows, parses them, keeps
// them, and answers the main thread with only what it draws: a window of rows, the overview's
// aggregates, the counts for the status line. Parsing 10,000 events (~11 MB of JSON), filtering
// them and counting them here keeps the page's main thread free to draw.
//
// Every message is {id, type, ...}; every answer {id, ...}, in the order asked, except a load's and
// the excluded counts', which come once their fetches are done: until a load's comes the other
// answers are of the rows before it. A load asked for after another makes the first stale, and
// the excluded counts asked for with it: they then change nothing.
import { getJson, isoOf, msOf } from './format.js';
import { overviewOf, visibleOf, windowOf } from './view.js';

/** Everything the worker holds: the rows loaded and what the toggles let through. */
const state = {
  /** The events loaded and streamed since, newest first. */
  events: [],
  /** Those the toggles let through: what the table, the overview and a download show. */
  visible: [],
  /** node/seq of every event loaded, so that a stream replay never duplicates one. */
  keys: new Set(),
  /** execId → the successful exec of `events` it names (the newest), which an exit ends. */
  execs: new Map(),
  /** The toggles on and the stacking, as last told. */
  look: { toggles: {}, stack: 'result' },
  /** The view the rows are of: the rows asked for, and the filter's node, since and until ('' when not given). */
  view: { limit: 1000, node: '', since: '', until: '' },
  /** The histogram's window: {from, to} in ms. */
  range: { from: 0, to: 1 },
  /** The number of the newest load asked for. */
  latest: 0,
  /** The query of GET /api/excluded for the window the last load's rows span. */
  excludedQuery: '',
};

const keyOf = (event) => `${event.node}/${event.seq}`;

/** A successful exec loaded: the one an exit of its execId ends. */
function noteExec(event) {
  if (event.retval === 0 && event.execId) state.execs.set(event.execId, event);
}

const counts = () => ({ events: state.events.length, visible: state.visible.length });

/** What the main thread draws after the visible rows changed: their counts, the first `rows`, the overview. */
function shown(rows) {
  state.visible = visibleOf(state.events, state.look.toggles);
  return { counts: counts(), rows: state.visible.slice(0, rows), overview: overview() };
}

function overview() {
  state.range = windowOf(state.visible, state.view.since, state.view.until);
  return overviewOf(state.visible, state.range, state.look.stack);
}

const handlers = {
  /**
   * Loads the rows of `query` and the gaps and throttles of `window`: the first `rows` of them to
   * draw, and the gaps and throttles that fall in the rows' window. Stale when another load was
   * asked for meanwhile: then nothing changes. The excluded counts of the window are asked apart.
   */
  async load({ loadNo, query, window, headers, look, view, rows }) {
    state.latest = loadNo;
    state.look = look;
    const [answer, incomplete] = await Promise.all([getJson(`/api/events?${query}`, headers), getJson(`/api/events?${window}`, headers)]);
    if (loadNo !== state.latest) return { stale: true };
    if (!answer.ok) return { ok: false, status: answer.status, body: answer.body };
    const { events, ...rest } = answer.body;
    state.view = view;
    state.events = events;
    state.keys = new Set(events.map(keyOf));
    // Oldest first, so that the newest exec of an execId is the one kept.
    state.execs = new Map();
    for (let i = events.length - 1; i >= 0; i--) noteExec(events[i]);
    // The rows as the toggles are now (they may have changed while this load was on its way), and
    // the histogram's window: [since, until), or from the oldest row on when not given.
    const first = shown(rows);
    const to = view.until === '' ? Infinity : state.range.to;
    // A gap spans from its `from` to when it was found (`time`).
    const within = (e) => msOf(e.time) >= state.range.from && msOf(e.kind === 'gap' ? e.from : e.time) < to;
    const missing = incomplete.ok ? incomplete.body.events.filter((e) => events.length === 0 || within(e)) : [];
    // What was left out on purpose in the window of every event loaded, whatever the toggles show
    // (no events, only counts by the minute): asked for once the rows are drawn (`excluded`).
    const asked = new URLSearchParams({ since: isoOf(windowOf(events, view.since, view.until).from) });
    if (view.until !== '') asked.set('until', view.until);
    if (view.node !== '') asked.set('node', view.node);
    state.excludedQuery = asked.toString();
    // Where the agent's stream goes on from, rows or none (a merged view streams from `after`): the
    // earlier of the two answers', so that a gap or throttle delivered between them comes again
    // (counted once) rather than not at all.
    const resumeSeq = incomplete.ok && rest.lastSeq !== undefined ? Math.min(rest.lastSeq, incomplete.body.lastSeq) : rest.lastSeq;
    return { ok: true, meta: rest, resumeSeq, missing, ...first };
  },
  /**
   * What was left out on purpose in the window of load `loadNo`'s rows, or null when the agent did
   * not say. Asked for apart from the load, so that the rows never wait for it (over a cluster it
   * is another round to every node). Stale when another load was asked for meanwhile.
   */
  async excluded({ loadNo, headers }) {
    if (loadNo !== state.latest) return { stale: true };
    const answer = await getJson(`/api/excluded?${state.excludedQuery}`, headers);
    if (loadNo !== state.latest) return { stale: true };
    return { excluded: answer.ok ? answer.body : null };
  },
  /** Toggles or stacking changed: the rows and the overview again, from the events loaded. */
  look({ look, rows }) {
    state.look = look;
    return shown(rows);
  },
  /** The overview again (rows came from the stream). */
  overview: () => ({ counts: counts(), overview: overview() }),
  /**
   * `count` visible rows from just after the one keyed `after` (null: from the first). Asked by
   * the last row drawn, not by position: live events the page has not drawn yet are already on
   * top here, so a position would be off by them. None when that row has dropped off the end.
   */
  rows({ after, count }) {
    const start = after === null ? 0 : state.visible.findIndex((e) => keyOf(e) === after) + 1;
    return { rows: start === 0 && after !== null ? [] : state.visible.slice(start, start + count) };
  },
  /**
   * A new event from the stream goes on top, the oldest drop off: whether it is new and visible,
   * and the keys of the events dropped.
   */
  live({ event }) {
    const key = keyOf(event);
    if (state.keys.has(key)) return { added: false };
    state.keys.add(key);
    // Without toggles the visible rows are the events array itself.
    const same = state.visible === state.events;
    state.events.unshift(event);
    noteExec(event);
    const visible = visibleOf([event], state.look.toggles).length === 1;
    if (visible && !same) state.visible.unshift(event);
    const dropped = [];
    while (state.events.length > state.view.limit) {
      const gone = state.events.pop();
      state.keys.delete(keyOf(gone));
      if (state.execs.get(gone.execId) === gone) state.execs.delete(gone.execId);
      if (!same && state.visible.at(-1) === gone) state.visible.pop();
      dropped.push(keyOf(gone));
    }
    return { added: true, visible, dropped, counts: counts() };
  },
  /** An exit from the stream: the exec it ends, now with its exit, or null when not loaded. */
  exit({ exit }) {
    const event = state.execs.get(exit.execId);
    if (event === undefined) return { event: null };
    const { status, code, signal, coreDumped, duration, time } = exit;
    event.exit = { time, status, code, signal, coreDumped, duration };
    return { event };
  },
  /** The successful exec of `execId` loaded, if any. */
  find: ({ execId }) => ({ event: state.events.find((e) => e.execId === execId && e.retval === 0) }),
  /** What is shown, as JSON lines. */
  download: () => ({ blob: new Blob(state.visible.map((e) => `${JSON.stringify(e)}\n`), { type: 'application/x-ndjson' }) }),
};

self.addEventListener('message', async ({ data }) => {
  try {
    self.postMessage({ id: data.id, ...(await handlers[data.type](data)) });
  } catch (err) {
    // Said on the page (its errors are what a test or a person sees), not lost in the worker.
    self.postMessage({ id: data.id, error: err instanceof Error ? err.message : String(err) });
  }
});
