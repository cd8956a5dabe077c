// How the page writes an event's fields as text (and reads the agent's answers, for the page and
// its worker alike). Every event field is untrusted (argv can hold markup and control characters):
// text only ever goes into the DOM through textContent or createTextNode, never innerHTML.

const ERRNO = {
  1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 8: 'ENOEXEC', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 26: 'ETXTBSY', 36: 'ENAMETOOLONG',
  40: 'ELOOP',
};

const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

const SAFE = /^[\w@%+=:,./-]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** One byte of an argument in $'…' (bash's ANSI-C quoting): what the shell reads back as that byte. */
function escapeByte(byte) {
  if (byte === 0x5c) return '\\\\';
  if (byte === 0x27) return "\\'";
  if (byte === 0x0a) return '\\n';
  if (byte === 0x09) return '\\t';
  if (byte === 0x0d) return '\\r';
  if (byte < 0x20 || byte >= 0x7f) return `\\x${byte.toString(16).padStart(2, '0')}`;
  return String.fromCharCode(byte);
}

/** An argument as a person would paste it: bare, in single quotes, or in $'…' when it holds control characters. */
function shellQuote(arg) {
  if (SAFE.test(arg)) return arg;
  if (!CONTROL.test(arg)) return `'${arg.replace(/'/g, "'\\''")}'`;
  let out = '';
  for (const ch of arg) {
    const code = ch.codePointAt(0);
    out += code < 0x80 ? escapeByte(code) : ch;
  }
  return `$'${out}'`;
}

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * The arguments as shell words. When some argument is not UTF-8 the event carries its exact bytes
 * (argvBase64, NUL-separated): those arguments are written byte for byte in $'…', so that the
 * command pastes back as it ran instead of with U+FFFD in it.
 */
export function commandWords(event) {
  if (event.argvBase64 === undefined) return event.argv.map(shellQuote);
  const bytes = Uint8Array.from(atob(event.argvBase64), (c) => c.charCodeAt(0));
  const words = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0) continue;
    if (i === bytes.length && start === i && words.length > 0) break;
    const arg = bytes.subarray(start, i);
    try {
      words.push(shellQuote(strict.decode(arg)));
    } catch {
      words.push(`$'${Array.from(arg, escapeByte).join('')}'`);
    }
    start = i + 1;
  }
  return words;
}

export const commandLine = (event) => commandWords(event).join(' ');

export const errnoName = (retval) => ERRNO[-retval] ?? `errno ${-retval}`;

/** How the process ended: `exit 3 after 1.2 s`, `SIGKILL after 5 s`, `signal 11 (core) …`. */
export function exitText(exit) {
  const how = exit.status === 'signal' ? `${SIGNALS[exit.signal] ?? `signal ${exit.signal}`}${exit.coreDumped ? ' (core)' : ''}` : `exit ${exit.code}`;
  return `${how} after ${exit.duration < 10 ? exit.duration.toFixed(3) : Math.round(exit.duration)} s`;
}

/** An event time to the millisecond, as the table shows it. */
export const shortTime = (time) => time.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1');

/**
 * Milliseconds since the epoch of an event time. Event times are always UTC with nine fraction
 * digits (`2026-11-24T16:02:03.123456789Z`), which Date does not read: cut to the millisecond.
 * Called for every event on every redraw, hence no regular expression.
 */
export const msOf = (time) => Date.parse(`${time.slice(0, 23)}Z`);

/** An RFC 3339 time (to the millisecond) for a filter. */
export const isoOf = (ms) => new Date(ms).toISOString();

/** The origin badges of an event: how it got into the container, and whether it came from the image. */
export function badgesOf(event) {
  const badges = [];
  if (event.origin === 'exec' || event.origin === 'probe' || event.origin === 'debug') badges.push(event.origin);
  if (event.drift) badges.push('drift');
  if (event.fileless) badges.push('fileless');
  return badges;
}

/**
 * Where the process ran: {kind, text}, kind `pod` (text namespace/pod/container), `conflict` (a
 * container named after one pod inside another's cgroup), `container` (no pod known) or `host`.
 */
export function whereOf(event) {
  if (event.pod !== null && event.pod !== undefined) return { kind: 'pod', text: `${event.namespace}/${event.pod}/${event.container ?? '?'}` };
  if (event.attribution === 'conflict') return { kind: 'conflict', text: `container ${event.containerId.slice(0, 12)} (conflict)` };
  if (event.containerId !== null && event.containerId !== undefined) return { kind: 'container', text: `container ${event.containerId.slice(0, 12)} (pod unknown)` };
  return { kind: 'host', text: 'host' };
}

/** A workload as the API's filter and the metrics' label write it: KIND/NAME; null for none. */
export const workloadText = (workload) => (workload ? `${workload.kind}/${workload.name}` : null);

/** namespace/pod/container, or how the process is placed when no pod is named. */
export const whereText = (event) => whereOf(event).text;

/** GET `path` from the agent with `headers`: {ok, status, body}; status 0 when it cannot be reached. */
export async function getJson(path, headers) {
  try {
    const response = await fetch(path, { headers });
    return { ok: response.ok, status: response.status, body: await response.json() };
  } catch {
    return { ok: false, status: 0, body: { message: 'cannot reach the agent' } };
  }
}
