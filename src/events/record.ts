/**
 * What the recent-events ring and the live stream keep of a delivered event: its JSON text,
 * written once at delivery (every reader gets exactly that text), and the fields the exact-match
 * filters read: one string and one small object per event. Keeping the event itself instead (15-30
 * heap objects: argv and a string per argument, the names, …) and serializing it when read measured
 * worse with a stream subscriber (bench/pipeline.mjs: ~113,000 against ~121,000 events/s) and
 * holds more memory for the same argv; it did better with nobody reading (~147,000 against
 * ~115,000), which is the trade to revisit if the stream is rarely open.
 */
import { serializeEvent, type AgentEvent, type Attribution, type ExecEvent, type ExecExit, type Origin, type Workload } from './schema.js';

export interface EventRecord {
  readonly seq: number;
  readonly kind: AgentEvent['kind'];
  /** Null for a throttle or a gap (they name no process). */
  readonly execId: string | null;
  /** Null for an exit (the filters of exec fields match execs only). */
  readonly parentExecId: string | null;
  /** serializeEvent(event) at delivery. Readers take textOf(record), which adds `exit`. */
  readonly json: string;
  /**
   * The JSON text of the exec's `exit` once its process has ended (withExit), else null: kept
   * apart so that an exit adds a small string to the ring rather than a new copy of the exec's text.
   */
  readonly exit: string | null;
  readonly time: string;
  /** Empty for a gap. */
  readonly comm: string;
  /** The pod fields: null for a gap (it names its pods in `pods`). */
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  readonly image: string | null;
  readonly attribution: Attribution | null;
  /** The event's own workload object (shared, not copied): null for a gap. */
  readonly workload: Workload | null;
  /** Null for a throttle or a gap (no process). */
  readonly origin: Origin | null;
  readonly sessionExecId: string | null;
  /** Null for an exit, likewise. */
  readonly uid: number | null;
  readonly euid: number | null;
  readonly drift: boolean;
  /** retval is not 0. */
  readonly failed: boolean;
  /** Estimated heap bytes (the ring's byte budget). */
  readonly bytes: number;
}

/** The record object and its numbers, the time and comm strings, rounded up; the pod's strings are shared. */
export const RECORD_BYTES = 256;

/**
 * What V8 holds for the characters of a flat string: one byte each while every character is
 * Latin-1, two each as soon as one is not (a single emoji in argv doubles the whole JSON text).
 */
export function textBytes(text: string): number {
  return /[^\u0000-\u00ff]/.test(text) ? 2 * text.length : text.length;
}

/** The record of a delivered (enriched, redacted) event. */
export function eventRecord(event: AgentEvent): EventRecord {
  // A gap names no process and no pod (it names its pods in `pods`).
  const where = event.kind === 'gap' ? null : event;
  const common = {
    seq: event.seq,
    kind: event.kind,
    execId: event.kind === 'exec' || event.kind === 'exit' ? event.execId : null,
    exit: null,
    time: event.time,
    comm: where?.comm ?? '',
    namespace: where?.namespace ?? null,
    pod: where?.pod ?? null,
    container: where?.container ?? null,
    image: where?.image ?? null,
    attribution: where?.attribution ?? null,
    workload: where?.workload ?? null,
    origin: event.kind === 'exec' || event.kind === 'exit' ? event.origin : null,
    sessionExecId: event.kind === 'exec' || event.kind === 'exit' ? event.sessionExecId : null,
  };
  if (event.kind === 'exit') {
    // The ring does not keep exits: their text is read only by stream subscribers and
    // --log-events, so it is written when first read (most agents have neither, and a
    // JSON.stringify per exit was 5-7% of the agent's CPU under a storm, measured side by side).
    let text: string | null = null;
    return {
      ...common,
      parentExecId: null,
      uid: null,
      euid: null,
      drift: false,
      failed: false,
      get json() {
        text ??= serializeEvent(event);
        return text;
      },
      get bytes() {
        return RECORD_BYTES + textBytes(this.json);
      },
    };
  }
  const json = serializeEvent(event);
  const exec = event.kind === 'exec' ? event : null;
  return {
    ...common,
    parentExecId: exec?.parentExecId ?? null,
    json,
    uid: exec?.uid ?? null,
    euid: exec?.euid ?? null,
    drift: exec !== null && exec.drift,
    failed: exec !== null && exec.retval !== 0,
    bytes: RECORD_BYTES + textBytes(json),
  };
}

/**
 * The record of an exec once its process has ended: `exit` kept beside its text. Re-serializing
 * the event, or even writing its text again with `exit` in it, cost a copy of every exec's text
 * per exit (two agents side by side through one storm: 0.86 and 0.89 of the CPU without any update).
 */
export function withExit(record: EventRecord, exit: ExecExit): EventRecord {
  const text = JSON.stringify(exit);
  return { ...record, exit: text, bytes: record.bytes + textBytes(text) };
}

/**
 * The event's JSON text as readers get it: with `exit` once known. `exit` is the last field of the
 * exec schema and absent from the text until then, so it goes at its end, where serializeEvent
 * would write it.
 */
export function textOf(record: EventRecord): string {
  return record.exit === null ? record.json : `${record.json.slice(0, -1)},"exit":${record.exit}}`;
}

/** The exec event a record was written from (filters that search filename and argv read them here). */
export const eventOf = (record: EventRecord): ExecEvent => JSON.parse(textOf(record)) as ExecEvent;
