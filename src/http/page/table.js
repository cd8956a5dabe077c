// The rows: one <tr> per event. The page builds the first CHUNK rows of what is shown, and more as
// the reader scrolls to the end of them, each chunk asked of the worker that holds the rest.
import { badgesOf, commandWords, el, errnoName, exitText, shortTime, whereOf, workloadText } from './format.js';

/** Rows built at a time: enough to fill a tall screen several times over. */
export const CHUNK = 50;

function whereCell(event) {
  const td = el('td', 'where');
  const { kind, text } = whereOf(event);
  if (kind === 'pod') {
    td.textContent = text;
    if (event.workload) td.title = workloadText(event.workload);
  } else if (kind === 'conflict') {
    // Named after one pod's container from inside another pod's cgroup: show both claims.
    td.append(el('span', 'conflict', text));
    td.title = `${event.cgroupParent}/${event.cgroup}`;
  } else {
    td.append(el('span', 'muted', text));
  }
  return td;
}

function argvCell(event) {
  const td = el('td', 'argv');
  const args = el('div', 'args');
  commandWords(event).forEach((word, i) => {
    if (i > 0) args.append(' ');
    args.append(el('span', 'arg', word));
  });
  td.append(args);
  if (event.argvTruncated) {
    td.append(el('span', 'note', `truncated: ${event.argv.length} of ${event.argc} arguments shown`));
  }
  td.title = 'click to expand';
  td.addEventListener('click', (click) => {
    // Folding is this cell's own business: the row's click opens the process.
    click.stopPropagation();
    td.classList.toggle('expanded');
  });
  return td;
}

function originCell(event) {
  const td = el('td', 'origin');
  for (const badge of badgesOf(event)) td.append(el('span', `badge badge-${badge}`, badge), ' ');
  if (td.childNodes.length === 0) td.append(el('span', 'muted', event.origin ?? ''));
  return td;
}

/** The row of one event; `link` is the permalink that opens its process. */
export function row(event, link) {
  const failed = event.retval !== 0;
  const tr = el('tr', failed ? 'failed' : '');
  tr.dataset.seq = String(event.seq);
  tr.dataset.node = event.node;
  tr.tabIndex = -1;
  const time = el('td', 'time');
  const [date, clock] = shortTime(event.time).split(' ');
  const open = el('a', 'open');
  open.append(el('span', 'date', `${date} `), clock);
  open.href = link;
  open.title = `${event.time}: open the process`;
  time.append(open);
  const pids = el('td', 'pids', `${event.pid} / ${event.ppid}`);
  pids.title = `tid ${event.tid}, parent ${event.parentComm}`;
  const user = el('td', 'user', String(event.uid));
  user.title = `uid ${event.uid}, gid ${event.gid}, euid ${event.euid}, egid ${event.egid}`;
  if (event.euidDiffers) user.append(el('div', 'euid', `euid ${event.euid}`));
  const binary = el('td', 'binary', event.filename);
  const base = event.filename.slice(event.filename.lastIndexOf('/') + 1);
  if (event.comm !== base) binary.append(el('div', 'muted', `comm ${event.comm}`));
  const result = el('td', 'result', failed ? `✗ failed ${errnoName(event.retval)}` : 'ok');
  if (event.exit) result.append(el('div', 'exit muted', exitText(event.exit)));
  tr.append(time, el('td', 'node', event.node), whereCell(event), pids, user, originCell(event), binary, argvCell(event), result);
  return tr;
}
