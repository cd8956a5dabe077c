// The browse page. Every event field is untrusted (argv can hold markup): text only ever goes
// into the DOM through textContent, never innerHTML.

const FILTERS = ['namespace', 'pod', 'container', 'comm', 'filename', 'q', 'result', 'uid', 'since'];
const ERRNO = {
  1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 8: 'ENOEXEC', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 26: 'ETXTBSY', 36: 'ENAMETOOLONG',
  40: 'ELOOP',
};

const form = document.getElementById('filters');
const tbody = document.querySelector('#events tbody');
const status = document.getElementById('status');
const errorBox = document.getElementById('error');

/** seq of every row shown, so a stream replay never duplicates one. */
const shown = new Set();
let source = null;

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

function row(event) {
  const failed = event.retval !== 0;
  const tr = el('tr', failed ? 'failed' : '');
  tr.dataset.seq = String(event.seq);
  const time = el('td', 'time', event.time.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1'));
  time.title = event.time;
  const pids = el('td', 'pids', `${event.pid} / ${event.ppid}`);
  pids.title = `tid ${event.tid}, parent ${event.parentComm}`;
  const user = el('td', 'user', String(event.uid));
  user.title = `uid ${event.uid}, gid ${event.gid}`;
  const binary = el('td', 'binary', event.filename);
  const base = event.filename.slice(event.filename.lastIndexOf('/') + 1);
  if (event.comm !== base) binary.append(el('div', 'muted', `comm ${event.comm}`));
  const errno = -event.retval;
  const result = el('td', 'result', failed ? `✗ failed ${ERRNO[errno] ?? `errno ${errno}`}` : 'ok');
  tr.append(time, whereCell(event), pids, user, binary, argvCell(event), result);
  return tr;
}

function showError(message) {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? '';
}

function updateStatus(extra) {
  const live = source === null ? '' : ' · live';
  status.textContent = `${tbody.rows.length} execs${live}${extra ? ` · ${extra}` : ''}`;
}

async function load() {
  const params = filterParams();
  const rawLimit = form.elements.limit.value.trim();
  if (rawLimit !== '') params.set('limit', rawLimit);
  let response;
  let body;
  try {
    response = await fetch(`/api/events?${params}`);
    body = await response.json();
  } catch {
    showError('cannot reach the agent');
    return;
  }
  if (!response.ok) {
    showError(body.message);
    return;
  }
  showError(null);
  shown.clear();
  tbody.replaceChildren(...body.events.map((event) => {
    shown.add(event.seq);
    return row(event);
  }));
  updateStatus();
}

function stopLive() {
  if (source !== null) source.close();
  source = null;
}

/** Follows the stream from the newest row shown; new rows go on top, the oldest drop off. */
function startLive() {
  stopLive();
  const params = filterParams();
  const newest = tbody.rows[0]?.dataset.seq;
  if (newest !== undefined) params.set('after', newest);
  source = new EventSource(`/api/events/stream?${params}`);
  source.addEventListener('exec', (message) => {
    const event = JSON.parse(message.data);
    if (shown.has(event.seq)) return;
    shown.add(event.seq);
    const tr = row(event);
    tr.classList.add('new');
    tbody.prepend(tr);
    while (tbody.rows.length > limit()) {
      shown.delete(Number(tbody.lastElementChild.dataset.seq));
      tbody.lastElementChild.remove();
    }
    updateStatus();
  });
  source.addEventListener('open', () => updateStatus());
  source.addEventListener('error', () => updateStatus('reconnecting'));
  updateStatus();
}

async function apply() {
  syncUrl();
  stopLive();
  await load();
  if (form.elements.live.checked && errorBox.hidden) startLive();
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

fromUrl();
void apply();
