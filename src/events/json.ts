/**
 * ExecEvent → JSON text, by hand for the fixed shape of types.ts. Every event is serialized once on
 * the hot path (src/events/record.ts); JSON.stringify of the whole object spends most of its time
 * discovering the shape it is given, which never changes. Strings still go through JSON.stringify
 * (escaping is its job); numbers, booleans and nulls are written directly. The result parses to
 * the same value as JSON.stringify(event), keys in the same order as an event the decoder builds;
 * test/json.test.ts holds the two to that over varied events.
 *
 * The text is written in three parts — up to `"filename":`, then filename and argv, then the rest —
 * so that record.ts can note where filename and argv lie in it (the `q` and `filename` filters
 * search there).
 */
import type { ExecEvent } from './types.js';

const str = JSON.stringify;

/** A string or null, as JSON. */
const nullable = (value: string | null): string => (value === null ? 'null' : str(value));

/**
 * Every field eventJson writes. Typed so that a field added to ExecEvent fails to compile until it
 * is added here, and then test/json.test.ts fails until eventJson writes it.
 */
export const EVENT_FIELDS: Readonly<Record<keyof ExecEvent, true>> = {
  seq: true, time: true, node: true, pid: true, tid: true, ppid: true, uid: true, gid: true,
  comm: true, parentComm: true, filename: true, argv: true, argc: true, argvTruncated: true,
  argvBase64: true, filenameBase64: true, filenameTruncated: true, retval: true, fileless: true,
  execveat: true, readError: true, cgroupId: true, cgroup: true, cgroupParent: true,
  cgroupTruncated: true, containerId: true, namespace: true, pod: true, podUid: true,
  container: true, workload: true,
};

/** What comes between the filename's closing quote and argv's `[`. */
export const ARGV_KEY = ',"argv":';

/** The text up to and including `"filename":`. */
export function jsonHead(e: ExecEvent): string {
  return (
    `{"seq":${e.seq},"time":${str(e.time)},"node":${str(e.node)},"pid":${e.pid},"tid":${e.tid},"ppid":${e.ppid}` +
    `,"uid":${e.uid},"gid":${e.gid},"comm":${str(e.comm)},"parentComm":${str(e.parentComm)},"filename":`
  );
}

/** The text after argv's `]`. */
export function jsonTail(e: ExecEvent): string {
  const w = e.workload;
  let json =
    `,"argc":${e.argc},"argvTruncated":${e.argvTruncated}` +
    `,"filenameTruncated":${e.filenameTruncated},"retval":${e.retval},"fileless":${e.fileless}` +
    `,"execveat":${e.execveat},"readError":${e.readError},"cgroupId":${str(e.cgroupId)}` +
    `,"cgroup":${str(e.cgroup)},"cgroupParent":${str(e.cgroupParent)},"cgroupTruncated":${e.cgroupTruncated}` +
    `,"containerId":${nullable(e.containerId)}` +
    `,"namespace":${nullable(e.namespace)},"pod":${nullable(e.pod)},"podUid":${nullable(e.podUid)}` +
    `,"container":${nullable(e.container)}` +
    `,"workload":${w === null ? 'null' : `{"kind":${str(w.kind)},"name":${str(w.name)}}`}`;
  // Optional fields: present only when set, like JSON.stringify skipping undefined.
  if (e.argvBase64 !== undefined) json += `,"argvBase64":${str(e.argvBase64)}`;
  if (e.filenameBase64 !== undefined) json += `,"filenameBase64":${str(e.filenameBase64)}`;
  return `${json}}`;
}

/** JSON of one event (see the module comment). */
export function eventJson(e: ExecEvent): string {
  return `${jsonHead(e)}${str(e.filename)}${ARGV_KEY}${str(e.argv)}${jsonTail(e)}`;
}
