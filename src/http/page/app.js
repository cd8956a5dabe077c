// The browse page. Every event field is untrusted (argv can hold markup): text only ever goes
// into the DOM through textContent, never innerHTML.
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

const FILTERS = ['node', 'namespace', 'pod', 'container', 'comm', 'filename', 'q', 'result', 'origin', 'sessionExecId', 'uid', 'since'];
const ERRNO = {
  1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 8: 'ENOEXEC', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 26: 'ETXTBSY', 36: 'ENAMETOOLONG',
  40: 'ELOOP',
};

const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

const form = document.getElementById('filters');
const tbody = document.querySelector('#events tbody');
const status = document.getElementById('status');
const errorBox = document.getElementById('error');
const login = document.getElementById('login');
const loginMessage = document.getElementById('login-message');
const partial = document.getElementById('partial');
const nodeList = document.getElementById('nodes');

const TOKEN_KEY = 'execwatch-token';
/** Reconnect delay of the live stream, as the agent advertises with `retry:`. */
const RETRY_MS = 3000;

/** node/seq of every row shown, so a stream replay never duplicates one. */
const shown = new Set();
/** The AbortController of the live stream, or null when not following. */
let live = null;
/** Where the merged view's streams start (its answer's `after`), or undefined. */
let cursor;
/** Nodes that did not answer the last load, and what the streams said since: node → message. */
const problems = new Map();

const keyOf = (event) => `${event.node}/${event.seq}`;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
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

function limit() {
  const value = Number(form.elements.limit.value.trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
}

/** The URL holds the filters, so a view can be shared or reloaded. */
function syncUrl() {
  const params = filterParams();
  const rawLimit = form.elements.limit.value.trim();
  if (rawLimit !== '') params.set('limit', rawLimit);
  if (form.elements.live.checked) params.set('live', '1');
  const query = params.toString();
  history.replaceState(null, '', query === '' ? location.pathname : `?${query}`);
}

function fromUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of [...FILTERS, 'limit']) form.elements[name].value = params.get(name) ?? '';
  form.elements.live.checked = params.get('live') === '1';
}

function shellQuote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

function whereCell(event) {
  const td = el('td', 'where');
  if (event.pod !== null) {
    td.textContent = `${event.namespace}/${event.pod}/${event.container ?? '?'}`;
    if (event.workload) td.title = `${event.workload.kind}/${event.workload.name}`;
  } else if (event.attribution === 'conflict') {
    // Named after one pod's container from inside another pod's cgroup: show both claims.
    td.append(el('span', 'conflict', `container ${event.containerId.slice(0, 12)} (conflict)`));
    td.title = `${event.cgroupParent}/${event.cgroup}`;
  } else if (event.containerId !== null) {
    td.append(el('span', 'muted', `container ${event.containerId.slice(0, 12)} (pod unknown)`));
  } else {
    td.append(el('span', 'muted', 'host'));
  }
  return td;
}

function argvCell(event) {
  const td = el('td', 'argv');
  const args = el('div', 'args');
  event.argv.forEach((arg, i) => {
    if (i > 0) args.append(' ');
    args.append(el('span', 'arg', shellQuote(arg)));
  });
  td.append(args);
  if (event.argvTruncated) {
    td.append(el('span', 'note', `truncated: ${event.argv.length} of ${event.argc} arguments shown`));
  }
  td.title = 'click to expand';
  td.addEventListener('click', () => td.classList.toggle('expanded'));
  return td;
}

/** How the process ended: `exit 3 after 1.2 s`, `SIGKILL after 5 s`, `signal 11 (core) …`. */
function exitText(exit) {
  const how = exit.status === 'signal' ? `${SIGNALS[exit.signal] ?? `signal ${exit.signal}`}${exit.coreDumped ? ' (core)' : ''}` : `exit ${exit.code}`;
  return `${how} after ${exit.duration < 10 ? exit.duration.toFixed(3) : Math.round(exit.duration)} s`;
}

function row(event) {
  const failed = event.retval !== 0;
  const tr = el('tr', failed ? 'failed' : '');
  tr.dataset.seq = String(event.seq);
  tr.dataset.node = event.node;
  const time = el('td', 'time', event.time.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1'));
  time.title = event.time;
  const pids = el('td', 'pids', `${event.pid} / ${event.ppid}`);
  pids.title = `tid ${event.tid}, parent ${event.parentComm}`;
  const user = el('td', 'user', String(event.uid));
  user.title = `uid ${event.uid}, gid ${event.gid}, euid ${event.euid}, egid ${event.egid}`;
  if (event.euidDiffers) user.append(el('div', 'euid', `euid ${event.euid}`));
  const binary = el('td', 'binary', event.filename);
  const base = event.filename.slice(event.filename.lastIndexOf('/') + 1);
  if (event.comm !== base) binary.append(el('div', 'muted', `comm ${event.comm}`));
  const errno = -event.retval;
  const result = el('td', 'result', failed ? `✗ failed ${ERRNO[errno] ?? `errno ${errno}`}` : 'ok');
  if (event.exit) result.append(el('div', 'exit muted', exitText(event.exit)));
  tr.append(time, el('td', 'node', event.node), whereCell(event), pids, user, binary, argvCell(event), result);
  return tr;
}

function showError(message) {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? '';
}

function updateStatus(extra) {
  const following = live === null ? '' : ' · live';
  const nodes = document.body.classList.contains('cluster') ? ` · ${nodeList.options.length} nodes` : '';
  status.textContent = `${tbody.rows.length} execs${nodes}${following}${extra ? ` · ${extra}` : ''}`;
}

/** The nodes that did not answer, or whose stream has trouble, above the rows. */
function showProblems() {
  partial.hidden = problems.size === 0;
  partial.replaceChildren(
    el('strong', '', `Partial results: ${problems.size} ${problems.size === 1 ? 'node' : 'nodes'} not answering`),
    ...[...problems.values()].map((message) => el('div', '', message)),
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
  problems.clear();
  for (const f of body.failures) problems.set(f.node, `node ${f.node}${f.pod === null ? '' : ` (pod ${f.pod})`}: ${f.reason}`);
  showProblems();
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

/** Loads the rows; true when they were shown. */
async function load() {
  const params = filterParams();
  const rawLimit = form.elements.limit.value.trim();
  if (rawLimit !== '') params.set('limit', rawLimit);
  let response;
  let body;
  try {
    response = await fetch(`/api/events?${params}`, { headers: authHeaders() });
    body = await response.json();
  } catch {
    showError('cannot reach the agent');
    return false;
  }
  if (response.status === 401) {
    needToken(body.message);
    return false;
  }
  if (!response.ok) {
    showError(body.message);
    return false;
  }
  showError(null);
  if (body.nodes !== undefined) showView(body);
  cursor = body.after;
  shown.clear();
  tbody.replaceChildren(...body.events.map((event) => {
    shown.add(keyOf(event));
    return row(event);
  }));
  updateStatus();
  return true;
}

function stopLive() {
  if (live !== null) live.abort();
  live = null;
}

/** A new event from the stream goes on top; the oldest rows drop off. */
function showLive(event) {
  if (shown.has(keyOf(event))) return;
  shown.add(keyOf(event));
  const tr = row(event);
  tr.classList.add('new');
  tbody.prepend(tr);
  while (tbody.rows.length > limit()) {
    const last = tbody.lastElementChild.dataset;
    shown.delete(`${last.node}/${last.seq}`);
    tbody.lastElementChild.remove();
  }
  updateStatus();
}

/** Calls onFrame(event, id, data) for each `exec` and `notice` frame of a Server-Sent Events body, until it ends. */
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
      if (frame.event === 'exec' || frame.event === 'notice') onFrame(frame.event, frame.id, frame.data.join('\n'));
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

/** Follows the stream until stopped, reconnecting after the last event received (as EventSource would). */
async function follow(signal, after) {
  let last = after;
  while (!signal.aborted) {
    const params = filterParams();
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
        updateStatus();
        await readFrames(response.body, (kind, id, data) => {
          // A merged view's frames carry no id: a reconnect starts again from its cursor.
          if (id !== undefined) last = id;
          if (kind === 'exec') showLive(JSON.parse(data));
          else showNotice(JSON.parse(data));
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
    updateStatus(problem);
    await pause(retryMs, signal);
  }
}

/** What a merged view's stream says about one node (it dropped, it is back), above the rows. */
function showNotice({ node, message }) {
  if (/stream resumed/.test(message)) problems.delete(node);
  else problems.set(node, message);
  showProblems();
}

/** Follows the stream from the newest row shown (a merged view: from its cursor). */
function startLive() {
  stopLive();
  live = new AbortController();
  void follow(live.signal, document.body.classList.contains('cluster') ? cursor : tbody.rows[0]?.dataset.seq);
  updateStatus();
}

async function apply() {
  syncUrl();
  stopLive();
  const loaded = await load();
  if (form.elements.live.checked && loaded) startLive();
}

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
  void apply();
});

// `kubectl execwatch ui` prints its address with #token=…: kept for this tab, then out of the URL.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.has('token')) {
  sessionStorage.setItem(TOKEN_KEY, fragment.get('token'));
  history.replaceState(null, '', location.pathname + location.search);
}
fromUrl();
void apply();
