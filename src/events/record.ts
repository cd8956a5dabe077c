/**
 * What the recent-events ring, the live stream and --log-events keep of an event: its JSON text,
 * built once at delivery, and the few fields the filters read. An ExecEvent is 15-20 heap objects
 * (argv and one string per argument, time, comm, cgroup names…); keeping 10,000 of them alive made
 * every event survive the young-generation scavenges and get copied, and cost most of the
 * pipeline's CPU in GC. A record is one small object and its text: usually the decoder's front
 * text joined to the cgroup and pod fields' text, which every exec of the container shares.
 */
import { DecodedEvent } from './decoded.js';
import { timeMs } from './filter.js';
import { ARGV_KEY, jsonFlags, jsonHead, jsonPlace } from './json.js';
import type { ExecEvent } from './schema.js';

/** One delivered event, as the ring, the stream and the log hold it. */
export interface EventRecord {
  readonly seq: number;
  /** The event's JSON (src/events/json.ts): what every reader gets. */
  readonly json: string;
  /**
   * The JSON's beginning, at least through argv, as one flat string: what the filters search and
   * cut. `json` is often two strings joined, and a search in it would flatten it in place, giving
   * each record searched a copy of its whole text.
   */
  readonly front: string;
  /** Pod fields, shared with the pod index: null for host processes and unresolved pods. */
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  readonly comm: string;
  readonly uid: number;
  /** retval is not 0. */
  readonly failed: boolean;
  /** `time` in milliseconds since the epoch, sub-millisecond digits kept (filter.ts timeMs). */
  readonly timeMs: number;
  /** Where the filename's characters start in `json` and `front` (just after its opening quote). */
  readonly filenameAt: number;
  /** Where argv's `[` is in `json`; the filename's closing quote is at argvAt - 1 - ARGV_KEY.length. */
  readonly argvAt: number;
  /** Just after argv's `]`. */
  readonly argvEnd: number;
  /** The filename or an argument needed a JSON escape: the text holds a backslash there. */
  readonly escaped: boolean;
  /** Estimated heap bytes (the ring's byte budget). */
  readonly bytes: number;
}

/** The record object, its numbers and its share of the shared strings, rounded up. */
export const RECORD_BYTES = 160;

/** Builds the record of a delivered (enriched, redacted) event. */
export function eventRecord(e: ExecEvent): EventRecord {
  // The text stays two strings joined: the decoder's front text and the cgroup and pod fields,
  // shared by every exec of the container. Readers only ever embed `json` in a string of their
  // own (a frame, a line, a chunk of a response); one that searched or cut `json` itself would
  // flatten it in place, giving each record a copy of its whole text: they use `front`.
  const front = DecodedEvent.front(e);
  if (front !== undefined) {
    // The decoder wrote filename and argv only when nothing in them needed an escape.
    return record(e, front.text + jsonPlace(e), front.text, front.filenameAt, front.argvAt, front.argvEnd, false);
  }
  const head = jsonHead(e);
  const filename = JSON.stringify(e.filename);
  const argv = JSON.stringify(e.argv);
  const json = `${head}${filename}${ARGV_KEY}${argv}${jsonFlags(e)}${jsonPlace(e)}`;
  const filenameAt = head.length + 1;
  const argvAt = head.length + filename.length + ARGV_KEY.length;
  const argvEnd = argvAt + argv.length;
  // The search also flattens the many parts into one string, which serves as the front.
  const backslash = json.indexOf('\\', filenameAt);
  return record(e, json, json, filenameAt, argvAt, argvEnd, backslash >= 0 && backslash < argvEnd);
}

function record(e: ExecEvent, json: string, front: string, filenameAt: number, argvAt: number, argvEnd: number, escaped: boolean): EventRecord {
  return {
    seq: e.seq,
    json,
    front,
    namespace: e.namespace,
    pod: e.pod,
    container: e.container,
    comm: e.comm,
    uid: e.uid,
    failed: e.retval !== 0,
    // The decoder computed it with the text; other events (tests) are parsed.
    timeMs: DecodedEvent.timeMs(e) ?? timeMs(e.time),
    filenameAt,
    argvAt,
    argvEnd,
    escaped,
    bytes: RECORD_BYTES + json.length,
  };
}
