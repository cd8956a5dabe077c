/**
 * ExecEvent → JSON text, by hand for the fixed shape of types.ts. Every event is serialized once on
 * the hot path (src/events/record.ts); JSON.stringify of the whole object spends most of its time
 * discovering the shape it is given, which never changes. Strings still go through JSON.stringify
 * (escaping is its job); numbers, booleans and nulls are written directly. The result parses to
 * the same value as JSON.stringify(event), keys in the same order as an event the decoder builds;
 * test/json.test.ts holds the two to that over varied events.
 *
 * The text is written in parts — up to `"filename":`, then filename and argv, then the flags, then
 * the cgroup and pod fields — so that record.ts can note where filename and argv lie in it (the `q`
 * and `filename` filters search there) and put the decoder's front text (seq through the flags,
 * src/events/decoded.ts) before the last part.
 */
import type { ExecEvent } from './schema.js';

const str = JSON.stringify;

/** A string or null, as JSON. */
const nullable = (value: string | null): string => (value === null ? 'null' : str(value));

/**
 * Every field of the event JSON. Typed so that a field added to ExecEvent fails to compile until it
 * is added here, and then test/json.test.ts fails until the text holds it.
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

/** Longest node name JSON the decoder writes from bytes (DNS names have at most 253 characters). */
export const NODE_JSON_MAX = 512;

// Every event of an agent has the same node: its JSON is made once.
let lastNode = '';
let lastNodeJson = '""';
let lastNodePlain = true;

function refreshNode(node: string): void {
  if (node === lastNode) return;
  lastNodeJson = str(node);
  lastNodePlain = lastNodeJson.length <= NODE_JSON_MAX && /^[\x20-\x7f]*$/.test(lastNodeJson);
  lastNode = node;
}

/** The node name as JSON when that is ASCII and at most NODE_JSON_MAX long, else null. */
export function plainNodeJson(node: string): string | null {
  refreshNode(node);
  return lastNodePlain ? lastNodeJson : null;
}

/** The text up to and including `"filename":`. */
export function jsonHead(e: ExecEvent): string {
  refreshNode(e.node);
  return (
    `{"seq":${e.seq},"time":${str(e.time)},"node":${lastNodeJson},"pid":${e.pid},"tid":${e.tid},"ppid":${e.ppid}` +
    `,"uid":${e.uid},"gid":${e.gid},"comm":${str(e.comm)},"parentComm":${str(e.parentComm)},"filename":`
  );
}

/** The values an event's cgroup and pod fields' JSON is written from. */
type PlaceFields = 'cgroup' | 'cgroupParent' | 'cgroupTruncated' | 'containerId' | 'namespace' | 'pod' | 'podUid' | 'container' | 'workload';

/** The JSON of an event's cgroup and pod fields, and the values it was written from. */
interface PlaceText extends Pick<ExecEvent, PlaceFields> {
  text: string;
  /** `text` and the closing `}`: the end of an event without optional fields. */
  closed: string;
}

/**
 * The cgroup and pod fields are the same for every exec of a container (nine strings to escape),
 * so their text is kept per cgroup id and reused while every value still equals what it was
 * written from (pod fields change when the pod cache learns the pod). Cleared when full.
 */
const places = new Map<string, PlaceText>();
/** Most cgroups whose text is kept: far more than the containers of one node. */
export const PLACE_CACHE_MAX = 4096;

/** `,"cgroupId":…,"workload":…` of an event, in its cache entry. */
function place(e: ExecEvent): PlaceText {
  const cached = places.get(e.cgroupId);
  // Compared by identity: the decoder and the pod index share their strings and workload objects
  // between the events of a container; anything else is merely written again.
  if (
    cached !== undefined && cached.cgroup === e.cgroup && cached.cgroupParent === e.cgroupParent &&
    cached.cgroupTruncated === e.cgroupTruncated && cached.containerId === e.containerId &&
    cached.namespace === e.namespace && cached.pod === e.pod && cached.podUid === e.podUid &&
    cached.container === e.container && cached.workload === e.workload
  ) {
    return cached;
  }
  const w = e.workload;
  const text =
    `,"cgroupId":${str(e.cgroupId)}` +
    `,"cgroup":${str(e.cgroup)},"cgroupParent":${str(e.cgroupParent)},"cgroupTruncated":${e.cgroupTruncated}` +
    `,"containerId":${nullable(e.containerId)}` +
    `,"namespace":${nullable(e.namespace)},"pod":${nullable(e.pod)},"podUid":${nullable(e.podUid)}` +
    `,"container":${nullable(e.container)}` +
    `,"workload":${w === null ? 'null' : `{"kind":${str(w.kind)},"name":${str(w.name)}}`}`;
  const entry: PlaceText = {
    cgroup: e.cgroup, cgroupParent: e.cgroupParent, cgroupTruncated: e.cgroupTruncated, containerId: e.containerId,
    namespace: e.namespace, pod: e.pod, podUid: e.podUid, container: e.container, workload: w, text, closed: `${text}}`,
  };
  if (places.size >= PLACE_CACHE_MAX) places.clear();
  places.set(e.cgroupId, entry);
  return entry;
}

/** The text after argv's `]` up to the cgroup fields: what the decoder's front text ends with. */
export function jsonFlags(e: ExecEvent): string {
  return (
    `,"argc":${e.argc},"argvTruncated":${e.argvTruncated}` +
    `,"filenameTruncated":${e.filenameTruncated},"retval":${e.retval},"fileless":${e.fileless}` +
    `,"execveat":${e.execveat},"readError":${e.readError}`
  );
}

/** The text from the cgroup fields to the end. */
export function jsonPlace(e: ExecEvent): string {
  const cached = place(e);
  // Optional fields: present only when set, like JSON.stringify skipping undefined.
  if (e.argvBase64 === undefined && e.filenameBase64 === undefined) return cached.closed;
  let rest = '';
  if (e.argvBase64 !== undefined) rest += `,"argvBase64":${str(e.argvBase64)}`;
  if (e.filenameBase64 !== undefined) rest += `,"filenameBase64":${str(e.filenameBase64)}`;
  return `${cached.text}${rest}}`;
}
