// The browse page: wiring, state and the data it asks the agent for. The modules beside it draw:
// table.js the rows, panel.js the process panel, overview.js the histogram and the counts by pod,
// format.js the text of a field. Every event field is untrusted (argv can hold markup): text only
// ever goes into the DOM through textContent, never innerHTML.
//
// When the agent requires a token (--api-token-file), the first data request gets 401: the page
// asks for the token, keeps it in sessionStorage (this tab only, gone when it closes) and sends it
// as an Authorization header. That is why the live stream is read with fetch, not EventSource:
// EventSource cannot send headers, and a token in the URL would end up in logs and history.
//
// The same page serves `kubectl execwatch ui`, over the merged view of every node: its answers
// carry `nodes` (then the page shows a node column and filter), `failures` (nodes that did not
// answer, shown above the rows) and `after` (where each node's stream starts). Its address brings
// a token in the fragment (#token=…), which the browser never sends: kept like a typed one.
//
// Everything a view is made of is in the URL (filters, window, toggles, the open process), so a
// view can be shared, reloaded and gone back to.
//
// The rows live in a worker (worker.js), which fetches, parses, filters and counts them: this
// thread asks it for the rows it draws, a chunk at a time, and for the overview's counts, so that
// 10,000 rows cost the page no more than a hundred. The process panel and the live stream are
// fetched here: their answers are small.
import { el, getJson, msOf } from './format.js';
import { dragToZoom, drawOverview } from './overview.js';
import { showProcess } from './panel.js';
import { CHUNK, row } from './table.js';
import { TOGGLES } from './view.js';

const FILTERS = ['node', 'namespace', 'workload', 'pod', 'container', 'comm', 'filename', 'q', 'result', 'origin', 'sessionExecId', 'uid', 'since', 'until'];
/** Rows the page asks for unless `limit` says otherwise, and the most the API gives. */
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10000;

const $ = (id) => document.getElementById(id);
const form = $('filters');
const toggles = $('toggles');
const tbody = document.querySelector('#events tbody');
const status = $('status');
const errorBox = $('error');
const login = $('login');
const loginMessage = $('login-message');
const partial = $('partial');
const banner = $('banner');
const nodeList = $('nodes');
const more = $('more');
const panel = $('panel');
const stack = $('stack');
const overview = { histogram: $('histogram'), legend: $('legend'), groups: $('groups'), axisFrom: $('axis-from'), axisTo: $('axis-to') };

const TOKEN_KEY = 'execwatch-token';
/** Reconnect delay of the live stream, as the agent advertises with `retry:`. */
const RETRY_MS = 3000;
/** How often a followed view asks for its excluded counts again (they are counted by the minute). */
const EXCLUDED_REFRESH_MS = 30_000;

/**
 * What the feed is missing, counted from gap and throttle events. A throttle episode is known by
 * its node, cgroup and start (`since`, which its stop carries too), so that either phase counts
 * it: a window can hold a stop whose start came before it, or a start still running. `counted`
 * holds the node/seq of each event counted, so that none counts twice.
 */
function noneMissing() {
  return { lost: 0, gaps: 0, gapFrom: null, gapTo: null, throttled: 0, episodes: new Map(), throttledPods: new Set(), counted: new Set() };
}

/** Everything the page's main thread holds, owned here (the rows themselves are the worker's). */
const state = {
  /** How many events are loaded (and streamed since), and how many of them the toggles let through. */
  counts: { events: 0, visible: 0 },
  /** The events that have a row, in the order shown: the first of those the toggles let through. */
  shown: [],
  /** Counts the table's rebuilds: rows asked for before the last one are not for it. */
  generation: 0,
  /** The rows asked of the worker and not come yet, or null. */
  building: null,
  /** node/seq → its <tr>, for the rows built. */
  rows: new Map(),
  /** Where a stream of one agent starts: its last seq when the rows were loaded, then each frame's id. */
  resumeSeq: undefined,
  /** Index in `shown` of the row `j`/`k` moved to, or -1. */
  selected: -1,
  /** The exec id of the process the panel shows, or null. */
  open: null,
  /** Counts the panel's openings and the loads: an answer that is not for the newest is dropped. */
  opened: 0,
  loads: 0,
  /**
   * The view last applied: its filters (`params`), the limit box as typed (`rawLimit`, for the URL)
   * and the rows it asks for (`limit`). Everything but the form reads these, never the form, which
   * may hold a half-typed change not applied yet.
   */
  applied: { params: new URLSearchParams(), rawLimit: '', limit: DEFAULT_LIMIT },
  /** The histogram's window: {from, to} in ms. */
  range: { from: 0, to: 1 },
  /** What the feed is missing in the window: from gap and throttle events. */
  missing: noneMissing(),
  /** What was left out on purpose in the window (GET /api/excluded), or null when not known. */
  excluded: null,
  /** What the live stream went through: its drops and replays. */
  stream: { drops: 0, lastDrop: null, resumed: null },
  /** The AbortController of the live stream, or null when not following. */
  live: null,
  /** Where the merged view's streams start (its answer's `after`), or undefined. */
  cursor: undefined,
  /** Nodes that did not answer the last load, and what the streams said since: node → message. */
  problems: new Map(),
  /** Whether an overview redraw is already asked for the next frame. */
  drawPending: false,
};

const keyOf = (event) => `${event.node}/${event.seq}`;

const worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
/** Answers awaited from the worker, by the id of the message. */
const waiting = new Map();
let asked = 0;
worker.addEventListener('message', ({ data }) => {
  const { resolve, reject } = waiting.get(data.id);
  waiting.delete(data.id);
  if (data.error === undefined) resolve(data);
  else reject(new Error(`page worker: ${data.error}`));
});
// The worker did not load (or threw outside a message): nothing would be drawn, so said on the page.
worker.addEventListener('error', (error) => showError(`page worker: ${error.message || 'it failed to load'}; reload the page`));

/** Asks the worker (worker.js `handlers[type]`): its answer. */
function ask(type, message = {}) {
  const id = ++asked;
  worker.postMessage({ id, type, ...message });
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}

/** Filter parameters from the form, empty inputs left out. */
function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value !== '') params.set(name, value);
  }
  return params;
}

/**
 * The view the form asks for, to be applied. Its `limit` is the one place the limit box is read:
 * empty is the default, a whole number up to the API's most is itself, anything else is null
 * (refused with a message, never quietly replaced).
 */
function formView() {
  const rawLimit = form.elements.limit.value.trim();
  const value = rawLimit === '' ? DEFAULT_LIMIT : Number(rawLimit);
  const limit = Number.isInteger(value) && value >= 1 && value <= MAX_LIMIT ? value : null;
  return { params: filterParams(), rawLimit, limit };
}

const toggled = () => Object.fromEntries(Object.keys(TOGGLES).map((name) => [name, toggles.elements[name].checked]));
/** How the worker is to pick and count the rows: the toggles on, and the stacking. */
const look = () => ({ toggles: toggled(), stack: stack.value });

/** The URL of the view applied, with `open` the process to open (null: none). */
function viewUrl(open, view = state.applied) {
  const params = new URLSearchParams(view.params);
  if (view.rawLimit !== '') params.set('limit', view.rawLimit);
  if (form.elements.live.checked) params.set('live', '1');
  for (const [name, on] of Object.entries(toggled())) if (on) params.set(name, '1');
  if (stack.value !== 'result') params.set('stack', stack.value);
  if (open !== null) params.set('open', open);
  const query = params.toString();
  return query === '' ? location.pathname : `?${query}`;
}

/** The URL holds the view, so it can be shared or reloaded. */
function syncUrl() {
  history.replaceState(null, '', viewUrl(state.open));
}

function fromUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of [...FILTERS, 'limit']) form.elements[name].value = params.get(name) ?? '';
  form.elements.live.checked = params.get('live') === '1';
  for (const name of Object.keys(TOGGLES)) toggles.elements[name].checked = params.get(name) === '1';
  stack.value = params.get('stack') === 'origin' ? 'origin' : 'result';
  return params.get('open');
}

function showError(message) {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? '';
}

/** The applied `until` in ms, or Infinity: live events at or after it are outside the window shown. */
function untilMs() {
  const until = state.applied.params.get('until');
  return until === null ? Infinity : Date.parse(until);
}

function updateStatus(extra) {
  const until = state.applied.params.get('until');
  const following = state.live === null ? '' : until === null ? ' · live' : ` · live, nothing at or after until (${until})`;
  const nodes = document.body.classList.contains('cluster') ? ` · ${nodeList.options.length} nodes` : '';
  const { counts } = state;
  const hidden = counts.visible === counts.events ? '' : ` of ${counts.events} loaded`;
  const { limit } = state.applied;
  const full = counts.events >= limit ? ` · newest ${limit} (limit)` : '';
  status.textContent = `${counts.visible} execs${hidden}${nodes}${full}${following}${extra ? ` · ${extra}` : ''}`;
}

/** The nodes that did not answer, or whose stream has trouble, above the rows. */
function showProblems() {
  partial.hidden = state.problems.size === 0;
  partial.replaceChildren(
    el('strong', '', `Partial results: ${state.problems.size} ${state.problems.size === 1 ? 'node' : 'nodes'} not answering`),
    ...[...state.problems.values()].map((message) => el('div', '', message)),
  );
}

/** A merged view's answer: its nodes in the filter's list, its failures shown. */
function showView(body) {
  document.body.classList.add('cluster');
  nodeList.replaceChildren(...body.nodes.map((node) => {
    const option = document.createElement('option');
    option.value = node;
    return option;
  }));
  state.problems.clear();
  for (const f of body.failures) state.problems.set(f.node, `node ${f.node}${f.pod === null ? '' : ` (pod ${f.pod})`}: ${f.reason}`);
  showProblems();
}

/** Minutes of an ISO time, as the banner says them (UTC). */
const minuteOf = (iso) => iso.slice(0, 16).replace('T', ' ');

/** What was left out on purpose in the window (scope rules, --exclude-origin): lines of the banner. */
function excludedLines(excluded) {
  if (excluded === null) return [];
  const { host, namespace, pod, origin } = excluded.excluded;
  const span = `counted by whole minutes, ${minuteOf(excluded.from)} – ${minuteOf(excluded.to)} UTC${excluded.nodes === undefined ? '' : `, summed over ${excluded.nodes.length} ${excluded.nodes.length === 1 ? 'node' : 'nodes'}`}`;
  const lines = [];
  const scope = host + namespace + pod;
  if (scope > 0) {
    const why = [[namespace, '--include-namespaces / --exclude-namespaces'], [pod, '--exclude-pods'], [host, '--exclude-host']].filter(([n]) => n > 0).map(([n, flag]) => `${n} by ${flag}`).join(', ');
    lines.push(`${scope} events excluded by scope rules (not recorded, by design): ${why}; execs dropped in the kernel (or by the agent, when its scope table lagged) and exits of processes that ended out of scope, so they are in no row, count or chart here (${span}; execwatch_events_excluded_total).`);
  }
  if (origin > 0) {
    lines.push(`${origin} execs and exits excluded by --exclude-origin (not recorded, by design): they are in no row, count or chart here (${span}; execwatch_events_excluded_total{reason="origin"}).`);
  }
  return lines;
}

/** Whether the feed shown is complete, and if not, by how much and why. */
function showBanner() {
  const { missing, stream } = state;
  const lines = [];
  if (missing.gaps > 0) {
    lines.push(`${missing.lost} events lost in ${missing.gaps} ${missing.gaps === 1 ? 'gap' : 'gaps'} (${missing.gapFrom} – ${missing.gapTo}): the kernel's ring buffer was full, so these execs and exits were never seen by the agent and are in no row, count or chart here (execwatch_events_lost_total{stage="ringbuf_full"}).`);
  }
  if (missing.episodes.size > 0) {
    const pods = [...missing.throttledPods].slice(0, 5).join(', ');
    const ongoing = [...missing.episodes.values()].filter((stopped) => !stopped).length;
    const ended = missing.episodes.size - ongoing;
    const parts = [];
    if (ended > 0) parts.push(`${missing.throttled} execs throttled in ${ended} ${ended === 1 ? 'episode' : 'episodes'}`);
    if (ongoing > 0) parts.push(`${ongoing} throttle ${ongoing === 1 ? 'episode' : 'episodes'} ongoing (its execs are counted when it ends)`);
    lines.push(`${parts.join('; ')}${pods ? ` (${pods})` : ''}: a cgroup went over --cgroup-rate, and its execs above the rate were counted but not delivered (execwatch_events_throttled_total).`);
  }
  if (stream.drops > 0) {
    lines.push(`The live stream dropped ${stream.drops} ${stream.drops === 1 ? 'time' : 'times'} (last at ${stream.lastDrop})${stream.resumed ? `; it reconnected at ${stream.resumed} and replayed what the ring still held, so nothing the ring kept is missing` : '; reconnecting…'}.`);
  }
  const excluded = excludedLines(state.excluded);
  // Left out by design is not lost: said so when it is all there is.
  const heading = lines.length > 0 ? 'This feed is incomplete.' : 'Not every exec is recorded here, by design.';
  lines.push(...excluded);
  banner.hidden = lines.length === 0;
  banner.replaceChildren(...(lines.length === 0 ? [] : [el('strong', '', heading), ...lines.map((line) => el('div', '', line))]));
}

/** A gap or throttle event: what the banner counts. */
function countMissing(event) {
  const { missing } = state;
  // A stream resumed from before the load's last answer sends some of them again.
  const key = `${event.node}/${event.seq}`;
  if (missing.counted.has(key)) return;
  missing.counted.add(key);
  if (event.kind === 'gap') {
    missing.gaps++;
    missing.lost += event.lost;
    if (missing.gapFrom === null || event.from < missing.gapFrom) missing.gapFrom = event.from;
    if (missing.gapTo === null || event.to > missing.gapTo) missing.gapTo = event.to;
  } else if (event.kind === 'throttle') {
    const episode = `${event.node}/${event.cgroupId}/${event.since}`;
    missing.episodes.set(episode, missing.episodes.get(episode) === true || event.phase === 'stop');
    missing.throttled += event.suppressed;
    missing.throttledPods.add(event.pod === null ? `cgroup ${event.cgroupId}` : `${event.namespace}/${event.pod}`);
  }
}

/** The Authorization header of the token this tab was given, if any. */
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/** The agent refused (no token, or a rotated one): forget it and ask. */
function needToken(message) {
  stopLive();
  sessionStorage.removeItem(TOKEN_KEY);
  showError(null);
  loginMessage.textContent = message;
  login.hidden = false;
  login.elements.token.focus();
  updateStatus('token needed');
}

/** GET `path` from the agent with this tab's token (getJson), asking for the token on a 401. */
async function api(path) {
  const answer = await getJson(path, authHeaders());
  if (answer.status === 401) needToken(answer.body.message);
  return answer;
}

/** The permalink of the current view with process `execId` open. */
const link = (execId) => viewUrl(execId);

/** link() for many rows: the view's part written once. */
function linker() {
  const view = viewUrl(null);
  const join = view.startsWith('?') ? `${view}&open=` : '?open=';
  return (execId) => (execId ? `${join}${encodeURIComponent(execId)}` : view);
}

/** The table anew: `rows`, the first of those shown. */
function renderRows(rows) {
  state.generation++;
  state.rows.clear();
  state.shown = [];
  state.selected = -1;
  tbody.replaceChildren();
  appendRows(rows);
}

function appendRows(events) {
  const linkOf = linker();
  tbody.append(...events.map((event) => {
    const tr = row(event, linkOf(event.execId));
    state.rows.set(keyOf(event), tr);
    return tr;
  }));
  state.shown.push(...events);
  updateMore();
}

function updateMore() {
  const left = state.counts.visible - state.shown.length;
  more.hidden = left <= 0;
  more.textContent = `show ${Math.min(left, CHUNK)} more (${left} not drawn yet)`;
}

/** Builds the next chunk of rows, or up to `atLeast` rows (asked of the worker, one chunk at a time). */
async function renderMore(atLeast = 0) {
  // Another chunk on its way: this one starts after it (its failure is its own to say).
  while (state.building !== null) await state.building.catch(() => undefined);
  const start = state.shown.length;
  const end = Math.min(state.counts.visible, Math.max(atLeast, start + CHUNK));
  if (end <= start) return;
  const { generation } = state;
  // After the last row drawn: live events still on their way here are already on top there.
  const last = state.shown.at(-1);
  state.building = ask('rows', { after: last === undefined ? null : keyOf(last), count: end - start });
  try {
    const { rows } = await state.building;
    // The table was rebuilt meanwhile (a load, a toggle): these rows are of the one before.
    if (generation === state.generation) appendRows(rows);
  } catch (err) {
    showError(err.message);
  } finally {
    // Also when the worker failed: the next chunk is asked anew, not of this failed answer.
    state.building = null;
  }
}

/** The overview as the worker counted it. */
function drawAll(counted) {
  const { params, limit } = state.applied;
  state.range = counted.range;
  $('histogram-caption').textContent = `${state.counts.visible} execs${state.counts.events >= limit ? ` (the newest ${limit}: raise limit, or zoom, for older ones)` : ''}`;
  $('zoom-out').hidden = !params.has('since') && !params.has('until');
  drawOverview(overview, counted, filterOn);
}

/** What the worker answers once the rows shown changed: the table, the overview and the status anew. */
function drawShown({ counts, rows, overview: counted }) {
  state.counts = counts;
  renderRows(rows);
  drawAll(counted);
  updateStatus();
}

/** Toggles changed: the worker picks the rows anew. */
async function render() {
  const loads = state.loads;
  const answer = await ask('look', { look: look(), rows: CHUNK });
  // A load applied meanwhile drew its own rows, with the toggles as they are now.
  if (loads === state.loads) drawShown(answer);
}

/** Loads the rows and what the window is missing; true when they were shown. */
async function load(view) {
  const loadNo = ++state.loads;
  const params = new URLSearchParams(view.params);
  params.set('limit', String(view.limit));
  // Gaps name no pod and throttles only theirs: asked for over the window alone.
  const window = new URLSearchParams({ kind: 'gap,throttle', limit: '10000' });
  for (const name of ['node', 'since', 'until']) if (params.has(name)) window.set(name, params.get(name));
  const answer = await ask('load', {
    loadNo,
    query: params.toString(),
    window: window.toString(),
    headers: authHeaders(),
    look: look(),
    view: { limit: view.limit, node: params.get('node') ?? '', since: params.get('since') ?? '', until: params.get('until') ?? '' },
    rows: CHUNK,
  });
  // Applied again while this one was on its way (a filter clicked twice): the newer load wins.
  if (answer.stale || loadNo !== state.loads) return false;
  if (answer.status === 401) {
    needToken(answer.body.message);
    return false;
  }
  if (!answer.ok) {
    showError(answer.body.message);
    return false;
  }
  showError(null);
  state.applied = view;
  if (answer.meta.nodes !== undefined) showView(answer.meta);
  state.cursor = answer.meta.after;
  state.resumeSeq = answer.resumeSeq;
  state.missing = noneMissing();
  state.excluded = null;
  state.stream = { drops: 0, lastDrop: null, resumed: null };
  drawShown(answer);
  for (const event of answer.missing) countMissing(event);
  showBanner();
  void showExcluded(loadNo);
  return true;
}

/** The excluded counts of load `loadNo`'s window, in the banner once they come (unless another load came first). */
async function showExcluded(loadNo) {
  const answer = await ask('excluded', { loadNo, headers: authHeaders() });
  if (answer.stale || loadNo !== state.loads) return;
  state.excluded = answer.excluded;
  showBanner();
}

function stopLive() {
  if (state.live !== null) state.live.abort();
  state.live = null;
}

/** Redraws the overview at most once a frame while events stream in. */
function drawSoon() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(async () => {
    state.drawPending = false;
    const loads = state.loads;
    const answer = await ask('overview');
    if (loads !== state.loads) return;
    state.counts = answer.counts;
    drawAll(answer.overview);
  });
}

/** A new event from the stream goes on top; the oldest drop off. */
async function showLive(event) {
  const answer = await ask('live', { event });
  if (!answer.added) return;
  state.counts = answer.counts;
  if (answer.visible) {
    const tr = row(event, link(event.execId ?? null));
    tr.classList.add('new');
    state.rows.set(keyOf(event), tr);
    tbody.prepend(tr);
    state.shown.unshift(event);
    if (state.selected >= 0) state.selected++;
  }
  for (const key of answer.dropped) {
    const tr = state.rows.get(key);
    if (tr === undefined) continue;
    tr.remove();
    state.rows.delete(key);
    state.shown.splice(state.shown.findLastIndex((e) => keyOf(e) === key), 1);
  }
  updateMore();
  drawSoon();
  updateStatus();
}

/** An exit from the stream: the exec it ends shows how. */
async function showExit(exit) {
  const { event } = await ask('exit', { exit });
  const tr = event === null ? undefined : state.rows.get(keyOf(event));
  if (tr === undefined) return;
  state.shown[state.shown.findIndex((e) => keyOf(e) === keyOf(event))] = event;
  const fresh = row(event, link(event.execId));
  state.rows.set(keyOf(event), fresh);
  // The new row takes the old one's place in every sense: selected, and focused if it was.
  for (const name of ['selected', 'new']) if (tr.classList.contains(name)) fresh.classList.add(name);
  if (tr.hasAttribute('aria-selected')) fresh.setAttribute('aria-selected', 'true');
  const focused = tr.contains(document.activeElement);
  tr.replaceWith(fresh);
  if (focused) fresh.focus();
}

/** Calls onFrame(event, id, data) for each frame of a Server-Sent Events body, until it ends. */
async function readFrames(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = { event: 'message', id: undefined, data: [] };
      for (const line of buffer.slice(0, end).split('\n')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') frame.event = value;
        else if (field === 'id') frame.id = value;
        else if (field === 'data') frame.data.push(value);
      }
      buffer = buffer.slice(end + 2);
      if (frame.data.length > 0) onFrame(frame.event, frame.id, frame.data.join('\n'));
    }
  }
}

const pause = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => {
    clearTimeout(timer);
    resolve();
  });
});

const clock = () => new Date().toISOString().slice(11, 19);

/** Follows the stream until stopped, reconnecting after the last event received (as EventSource would). */
async function follow(signal, after) {
  let last = after;
  let attempt = 0;
  while (!signal.aborted) {
    const params = new URLSearchParams(state.applied.params);
    // The stream is asked from where the load left off, without `until`; the frames at or after
    // it are dropped below, so that the rows stay in the window the histogram and the URL show.
    params.delete('until');
    if (last !== undefined) params.set('after', last);
    let retryMs = RETRY_MS;
    let problem = 'reconnecting';
    try {
      const response = await fetch(`/api/events/stream?${params}`, { headers: authHeaders(), signal });
      if (response.status === 401) {
        needToken((await response.json()).message);
        return;
      }
      if (response.ok) {
        if (attempt > 0) {
          state.stream.resumed = clock();
          showBanner();
        }
        updateStatus();
        await readFrames(response.body, (kind, id, data) => {
          // A merged view's frames carry no id: a reconnect starts again from its cursor. One
          // agent's: from the last frame, of any kind, also when live is turned off and on again.
          if (id !== undefined) last = state.resumeSeq = id;
          const event = JSON.parse(data);
          // The window shown ends at `until`: what comes after it is not for this view.
          if (kind !== 'exit' && kind !== 'notice' && msOf(event.time) >= untilMs()) return;
          if (kind === 'exec') void showLive(event);
          else if (kind === 'exit') void showExit(event);
          else if (kind === 'gap' || kind === 'throttle') {
            countMissing(event);
            showBanner();
          } else if (kind === 'notice') showNotice(event);
        });
      } else {
        // Too many streams (429) or a bad filter: say so, and try again later.
        problem = `${(await response.json()).message} · retrying`;
        retryMs = Math.max(RETRY_MS, Number(response.headers.get('retry-after')) * 1000 || 0);
      }
    } catch {
      // The agent went away, or the stream was stopped: the loop condition tells which.
    }
    if (signal.aborted) return;
    attempt++;
    state.stream.drops++;
    state.stream.lastDrop = clock();
    state.stream.resumed = null;
    showBanner();
    updateStatus(problem);
    await pause(retryMs, signal);
  }
}

/** What a merged view's stream says about one node (it dropped, it is back), above the rows. */
function showNotice({ node, message }) {
  if (/stream resumed/.test(message)) state.problems.delete(node);
  else state.problems.set(node, message);
  showProblems();
}

/** Follows the stream from where the load left off: the agent's lastSeq (a merged view: its cursor). */
function startLive() {
  stopLive();
  state.live = new AbortController();
  const { signal } = state.live;
  void follow(signal, document.body.classList.contains('cluster') ? state.cursor : state.resumeSeq);
  // The window grows while it is followed, and so may what was left out of it.
  const refresh = setInterval(() => void showExcluded(state.loads), EXCLUDED_REFRESH_MS);
  signal.addEventListener('abort', () => clearInterval(refresh));
  updateStatus();
}

/** Loads the view, then opens the process the URL names: only once the rows loaded (a 401 asks first). */
async function applyAndOpen() {
  const loaded = await apply();
  if (!loaded || state.open === null) return;
  const { open } = state;
  const { event } = await ask('find', { execId: open });
  if (state.open === open) openProcess(open, event);
}

async function apply() {
  const view = formView();
  if (view.limit === null) {
    showError(`limit must be a whole number from 1 to ${MAX_LIMIT.toLocaleString('en')} (not "${view.rawLimit}"): the rows shown are still those of the last view applied`);
    return false;
  }
  // The URL says what was asked for at once; the rest of the page follows once it loaded.
  history.replaceState(null, '', viewUrl(state.open, view));
  stopLive();
  const loaded = await load(view);
  if (form.elements.live.checked && loaded) startLive();
  return loaded;
}

/** Opens the process panel on `execId` (`event`: the row opened, when there is one). */
function openProcess(execId, event) {
  if (!execId) return;
  state.open = execId;
  const openNo = ++state.opened;
  syncUrl();
  panel.hidden = false;
  document.body.classList.add('panel-open');
  // Another row opened before this one's answer came: that one's answer is not shown.
  const current = () => openNo === state.opened && state.open === execId;
  void showProcess($('panel-body'), $('panel-title'), execId, event, { api, open: (id) => openProcess(id), link, current });
  $('panel-close').focus();
}

function closeProcess() {
  if (state.open === null) return;
  state.open = null;
  panel.hidden = true;
  document.body.classList.remove('panel-open');
  syncUrl();
  const tr = tbody.rows[state.selected];
  if (tr !== undefined) tr.focus();
}

/** A click in the overview's counts: that namespace (and workload, or pod). */
function filterOn(filter) {
  form.elements.namespace.value = filter.namespace ?? '';
  form.elements.workload.value = filter.workload ?? '';
  form.elements.pod.value = filter.pod ?? '';
  void apply();
}

/** `j`/`k`: the selected row moves, its rows built as needed. */
async function select(index) {
  if (state.counts.visible === 0) return;
  const next = Math.max(0, Math.min(state.counts.visible - 1, index));
  if (next >= state.shown.length) await renderMore(next + 1);
  if (next >= state.shown.length) return;
  tbody.rows[state.selected]?.classList.remove('selected');
  tbody.rows[state.selected]?.removeAttribute('aria-selected');
  state.selected = next;
  const tr = tbody.rows[next];
  tr.classList.add('selected');
  tr.setAttribute('aria-selected', 'true');
  tr.focus();
  tr.scrollIntoView({ block: 'nearest' });
}

const typing = (target) => target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;

document.addEventListener('keydown', (key) => {
  if (key.ctrlKey || key.metaKey || key.altKey) return;
  if (key.key === 'Escape') {
    if (typing(key.target)) key.target.blur();
    else closeProcess();
    return;
  }
  if (typing(key.target)) return;
  if (key.key === '/') {
    key.preventDefault();
    form.elements.q.focus();
    form.elements.q.select();
  } else if (key.key === 'j') void select(state.selected + 1);
  else if (key.key === 'k') void select(state.selected - 1);
  else if (key.key === 'Enter' && key.target instanceof HTMLTableRowElement) {
    key.preventDefault();
    const event = state.shown[state.selected];
    if (event !== undefined) openProcess(event.execId, event);
  }
});

tbody.addEventListener('click', (click) => {
  const tr = click.target.closest('tr');
  // A modified click on the time's link is the browser's: a new tab on the permalink.
  if (tr === null || (click.target.closest('a') !== null && (click.ctrlKey || click.metaKey || click.shiftKey))) return;
  click.preventDefault();
  const index = [...tbody.rows].indexOf(tr);
  tbody.rows[state.selected]?.classList.remove('selected');
  state.selected = index;
  tr.classList.add('selected');
  const event = state.shown[index];
  openProcess(event.execId, event);
});

more.addEventListener('click', () => void renderMore());
// Rows are built as the end of the built ones comes into view.
new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting) && !more.hidden) void renderMore();
}).observe(more);

$('panel-close').addEventListener('click', () => closeProcess());
$('zoom-out').addEventListener('click', () => {
  form.elements.since.value = '';
  form.elements.until.value = '';
  void apply();
});
dragToZoom(overview.histogram, () => state.range, (since, until) => {
  form.elements.since.value = since;
  form.elements.until.value = until;
  void apply();
});
stack.addEventListener('change', async () => {
  syncUrl();
  const loads = state.loads;
  // The rows stay as they are: only the overview is counted anew.
  const answer = await ask('look', { look: look(), rows: 0 });
  if (loads === state.loads) drawAll(answer.overview);
});
toggles.addEventListener('change', () => {
  syncUrl();
  void render();
});

$('download').addEventListener('click', async () => {
  const { blob } = await ask('download');
  const url = URL.createObjectURL(blob);
  const a = el('a');
  a.href = url;
  a.download = `execwatch-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
});

form.addEventListener('submit', (submitEvent) => {
  submitEvent.preventDefault();
  void apply();
});
form.elements.result.addEventListener('change', () => void apply());
form.elements.live.addEventListener('change', () => {
  syncUrl();
  if (form.elements.live.checked) startLive();
  else {
    stopLive();
    updateStatus();
  }
});

login.addEventListener('submit', (submitEvent) => {
  submitEvent.preventDefault();
  const token = login.elements.token.value.trim();
  if (token === '') return;
  sessionStorage.setItem(TOKEN_KEY, token);
  login.elements.token.value = '';
  login.hidden = true;
  void applyAndOpen();
});

// `kubectl execwatch ui` prints its address with #token=…: kept for this tab, then out of the URL.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.has('token')) {
  sessionStorage.setItem(TOKEN_KEY, fragment.get('token'));
  history.replaceState(null, '', location.pathname + location.search);
}
// The process to open is kept from the start, so that the URL keeps it while a token is asked for.
state.open = fromUrl();
// A link with a bad limit still keeps its filters until the first apply, which says what is wrong.
const first = formView();
state.applied = { ...first, limit: first.limit ?? DEFAULT_LIMIT };
void applyAndOpen();
