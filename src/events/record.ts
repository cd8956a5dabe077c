/**
 * What the recent-events ring and the live stream keep of a delivered event: its JSON text,
 * written once at delivery (every reader gets exactly that text), and the fields the exact-match
 * filters read: one string and one small object per event. Keeping the event itself instead (15-30
 * heap objects: argv and a string per argument, the names, …) and serializing it when read measured
 * worse with a stream subscriber (bench/pipeline.mjs: ~113,000 against ~121,000 events/s) and
 * holds more memory for the same argv; it did better with nobody reading (~147,000 against
 * ~115,000), which is the trade to revisit if the stream is rarely open.
 */
import { serializeEvent, type AgentEvent, type Attribution, type ExecEvent } from './schema.js';

export interface EventRecord {
  readonly seq: number;
  readonly kind: AgentEvent['kind'];
  /** Null for a throttle or a gap (they name no process). */
  readonly execId: string | null;
  /** Null for an exit (the filters of exec fields match execs only). */
  readonly parentExecId: string | null;
  /** serializeEvent(event). */
  readonly json: string;
  readonly time: string;
  /** Empty for a gap. */
  readonly comm: string;
  /** The pod fields: null for a gap (it names its pods in `pods`). */
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  readonly image: string | null;
  readonly attribution: Attribution | null;
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
  const { seq, kind, time } = event;
  const json = serializeEvent(event);
  const exec = event.kind === 'exec' ? event : null;
  const where = event.kind === 'gap' ? null : event;
  return {
    seq,
    kind,
    execId: event.kind === 'exec' || event.kind === 'exit' ? event.execId : null,
    parentExecId: exec?.parentExecId ?? null,
    json,
    time,
    comm: where?.comm ?? '',
    namespace: where?.namespace ?? null,
    pod: where?.pod ?? null,
    container: where?.container ?? null,
    image: where?.image ?? null,
    attribution: where?.attribution ?? null,
    uid: exec?.uid ?? null,
    euid: exec?.euid ?? null,
    drift: exec !== null && exec.drift,
    failed: exec !== null && exec.retval !== 0,
    bytes: RECORD_BYTES + textBytes(json),
  };
}

/** The exec event a record was written from (filters that search filename and argv read them here). */
export const eventOf = (record: EventRecord): ExecEvent => JSON.parse(record.json) as ExecEvent;
