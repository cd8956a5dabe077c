// The process panel: one process as GET /api/processes/:execId tells it (its exec, ancestors up to
// the container's first process, the exec attempts of its own that failed, children still in the
// ring, its exit, and the commands of the exec session it opened), with the full event as copyable
// JSON.
import { commandLine, el, errnoName, exitText, shortTime, whereText, workloadText } from './format.js';

/** A list item naming one process, which opens it when it has an exec id. */
function processItem(entry, { open, link }, extra) {
  const li = el('li', 'proc');
  const a = el('a', 'open', `${entry.pid ?? ''} ${commandLine(entry)}`.trim());
  a.href = link(entry.execId);
  a.addEventListener('click', (click) => {
    click.preventDefault();
    open(entry.execId);
  });
  li.append(a);
  if (extra) li.append(' ', el('span', 'muted', extra));
  return li;
}

/** Children that ran the same command (a loop's `sleep 1`) collapse into one line with a count. */
function collapsed(children) {
  const groups = new Map();
  // The API lists them newest first; the panel reads oldest first.
  for (const child of [...children].reverse()) {
    const key = `${child.filename}\0${child.argv.join('\0')}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { first: child, last: child, count: 1 });
    else {
      group.last = child;
      group.count++;
    }
  }
  return [...groups.values()];
}

function section(title, count) {
  const s = el('section', 'panel-section');
  s.append(el('h3', '', count === undefined ? title : `${title} (${count})`));
  return s;
}

function facts(event) {
  const dl = el('dl', 'facts');
  const add = (name, value) => dl.append(el('dt', '', name), el('dd', '', value));
  add('time', event.time);
  add('node', event.node);
  add('where', whereText(event));
  if (event.workload) add('workload', workloadText(event.workload));
  add('pid / ppid', `${event.pid} / ${event.ppid} (${event.parentComm})`);
  add('user', event.euidDiffers ? `uid ${event.uid}, euid ${event.euid}` : `uid ${event.uid}`);
  add('origin', `${event.origin ?? ''}${event.drift ? ' · drift' : ''}${event.fileless ? ' · fileless' : ''}`);
  add('binary', event.filename);
  add('result', event.retval === 0 ? 'ok' : `failed ${errnoName(event.retval)}`);
  add('exit', event.exit ? exitText(event.exit) : 'still running (or its exit not seen)');
  return dl;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'copied';
  } catch {
    button.textContent = 'select the text and copy it';
  }
}

/**
 * Fills `body` with the process `execId`. `event` is the row that was opened, when there is one:
 * its JSON is shown (a failed exec's own event, not the process that tried it). `api(path)` answers
 * {ok, status, body}; `open(execId)` opens another process; `link(execId)` is its permalink;
 * `current()` is false once another process was opened, and then the answer is dropped.
 */
export async function showProcess(body, title, execId, event, { api, open, link, current }) {
  title.textContent = event ? commandLine(event) : `process ${execId}`;
  body.replaceChildren(el('p', 'muted', 'loading…'));
  const answer = await api(`/api/processes/${encodeURIComponent(execId)}`);
  if (!current()) return;
  const proc = answer.ok ? answer.body : null;
  const shown = event ?? proc?.exec;
  body.replaceChildren();
  if (shown === undefined) {
    body.append(el('p', 'problem', answer.body?.message ?? `process ${execId} is not in the recent events`));
    return;
  }
  title.textContent = commandLine(shown);
  if (event && event.retval !== 0) body.append(el('p', 'problem', `This exec failed (${errnoName(event.retval)}): the process below is the one that tried it.`));
  body.append(facts(shown));
  if (proc === null) {
    body.append(el('p', 'muted', `No process view: ${answer.body?.message ?? `status ${answer.status}`}`));
  } else {
    const lineage = section('ancestors', proc.ancestors.length);
    const list = el('ol', 'lineage');
    // Oldest first, ending with this process: the tree as a person draws it.
    for (const a of [...proc.ancestors].reverse()) list.append(processItem(a, { open, link }));
    const self = el('li', 'proc self', `${proc.exec.pid} ${commandLine(proc.exec)}`);
    list.append(self);
    lineage.append(list);
    if (proc.ancestors.length === 0) lineage.append(el('p', 'muted', 'none known (a container\'s first process, pid 1, or started before the agent)'));
    body.append(lineage);

    if (proc.failed.length > 0) {
      const tried = section('failed exec attempts', proc.failed.length);
      const ol = el('ol', 'failed');
      // Oldest first, as they were tried: the path each one named, and why it failed.
      for (const f of [...proc.failed].reverse()) ol.append(el('li', 'attempt', `${shortTime(f.time)} ${f.filename} ✗ ${errnoName(f.retval)}`));
      tried.append(ol);
      body.append(tried);
    }

    const groups = collapsed(proc.children);
    const kids = section('children in the ring', proc.children.length);
    const ul = el('ul', 'children');
    for (const g of groups) {
      const li = processItem(g.last, { open, link }, g.count > 1 ? `×${g.count}, ${shortTime(g.first.time)} – ${shortTime(g.last.time)}` : shortTime(g.first.time));
      li.dataset.count = String(g.count);
      ul.append(li);
    }
    kids.append(proc.children.length === 0 ? el('p', 'muted', 'none') : ul);
    body.append(kids);

    if (proc.session.length > 0) {
      const session = section('exec session, in order', proc.session.length);
      const ol = el('ol', 'session');
      for (const e of [...proc.session].reverse()) {
        ol.append(processItem(e, { open, link }, `${shortTime(e.time)}${e.retval === 0 ? '' : ` ✗ ${errnoName(e.retval)}`}`));
      }
      session.append(ol);
      body.append(session);
    }
  }

  const json = section('event');
  const text = JSON.stringify(shown, null, 2);
  const button = el('button', 'copy', 'copy JSON');
  button.type = 'button';
  button.addEventListener('click', () => void copy(text, button));
  json.append(button, el('pre', 'json', text));
  body.append(json);
}
