/**
 * How merged events are printed: `-o table` (columns as `kubectl get` prints them), `wide` (more
 * columns, argv whole), `json` (the API's `{"events": […]}` plus the nodes that failed) and `jsonl`
 * (one event per line, for pipes). JSON carries each event exactly as its agent sent it, so kinds
 * this plugin does not know pass through; a table shows them with their kind and what it can.
 */
import { constants } from 'node:os';
import type { NodeFailure } from './cluster.js';
import type { MergedEvent } from './merge.js';
import type { Output } from './options.js';

/** Characters of argv a `table` row shows before cutting with "…". */
export const TABLE_ARGV_CHARS = 80;

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));

/** Control characters would break a row (a newline in an argument): shown escaped. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

function cut(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** namespace/pod/container, or what stands in for it. */
function whereOf(e: Record<string, unknown>): string {
  const pod = str(e.pod);
  if (pod !== null) return `${str(e.namespace)}/${pod}/${str(e.container) ?? '?'}`;
  const container = str(e.containerId);
  if (container !== null) return `container:${container.slice(0, 12)}${e.attribution === 'conflict' ? '(conflict)' : ''}`;
  return e.kind === 'exec' || e.kind === undefined ? '<host>' : '-';
}

function resultOf(m: MergedEvent): string {
  if (m.kind !== 'exec') return m.kind;
  const retval = Number(m.event.retval);
  return retval === 0 ? 'ok' : (ERRNO_NAMES.get(-retval) ?? `errno ${-retval}`);
}

function timeOf(time: string): string {
  // Milliseconds are enough on a screen; json keeps the nanoseconds.
  return /^\d{4}-.*\.\d{3}/.test(time) ? `${time.slice(0, 23)}Z` : time;
}

const field = (value: unknown): string => (value === undefined || value === null ? '-' : printable(String(value)));

/** Rows as text with columns padded like kubectl's (three spaces apart, the last not padded). */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] as number) + 3))).join('').trimEnd()).join('\n');
}

/** The column names of `table` or `wide`. */
export function tableHeader(wide: boolean): string[] {
  return wide
    ? ['TIME', 'NODE', 'NAMESPACE/POD/CONTAINER', 'PID', 'PPID', 'UID', 'COMM', 'FILENAME', 'ARGV', 'RESULT']
    : ['TIME', 'NODE', 'NAMESPACE/POD/CONTAINER', 'PID', 'COMM', 'ARGV', 'RESULT'];
}

/** One event's cells under tableHeader(wide). */
export function rowOf(m: MergedEvent, wide: boolean): string[] {
  const e = m.event;
  const argv = Array.isArray(e.argv) ? printable((e.argv as string[]).map(shellQuote).join(' ')) : '-';
  return wide
    ? [timeOf(m.time), m.node, whereOf(e), field(e.pid), field(e.ppid), field(e.uid), field(e.comm), field(e.filename), argv, resultOf(m)]
    : [timeOf(m.time), m.node, whereOf(e), field(e.pid), field(e.comm), cut(argv, TABLE_ARGV_CHARS), resultOf(m)];
}

/** The `table` or `wide` text of the events (with a header, without a trailing newline). */
export function table(events: readonly MergedEvent[], wide: boolean): string {
  return columns([tableHeader(wide), ...events.map((m) => rowOf(m, wide))]);
}

/** What `events` prints on stdout in format `output`. */
export function formatEvents(events: readonly MergedEvent[], failures: readonly NodeFailure[], output: Output): string {
  switch (output) {
    case 'json':
      return `{"events":[${events.map((m) => m.json).join(',')}],"failures":${JSON.stringify(failures)}}\n`;
    case 'jsonl':
      return events.map((m) => `${m.json}\n`).join('');
    default:
      return events.length === 0 ? '' : `${table(events, output === 'wide')}\n`;
  }
}

/** A node that failed, and why, in one line. */
export function failureLine(f: NodeFailure): string {
  return `node ${f.node}${f.pod === null ? '' : ` (pod ${f.pod})`}: ${f.reason}`;
}

/** The stderr lines naming each node that failed. */
export function failureLines(failures: readonly NodeFailure[]): string[] {
  return [...failures].sort((a, b) => a.node.localeCompare(b.node)).map(failureLine);
}
