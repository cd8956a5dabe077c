/**
 * What the recent-events ring and the live stream keep of a delivered event: its JSON text,
 * written once at delivery (every reader gets exactly that text), and the fields the exact-match
 * filters read: one string and one small object per event. Keeping the event itself instead (15-30
 * heap objects: argv and a string per argument, the names, …) and serializing it when read measured
 * worse with a stream subscriber (bench/pipeline.mjs: ~113,000 against ~121,000 events/s) and
 * holds more memory for the same argv; it did better with nobody reading (~147,000 against
 * ~115,000), which is the trade to revisit if the stream is rarely open.
 */
import { serializeEvent, type AgentEvent, type Attribution, type ExecEvent, type ExecExit, type ExitEvent, type Origin, type Workload } from './schema.js';

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
   * The exec's `exit` once its process has ended (withExit), else null: kept apart so that an exit
   * adds a small object to the ring rather than a new copy of the exec's text, and written out only
   * when a reader asks for the text (textOf).
   */
  readonly exit: ExecExit | null;
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

/*
 * Records are written field by field, not spread from a common part: an object spread copies
 * property by property into a new object, and an exit's record had two getters of its own (two
 * closures and accessor properties on every exit). See src/capture/decode.ts for what writing the
 * events and records out saved.
 */

/**
 * The record of an exit. The ring does not keep exits: their text is read only by stream
 * subscribers, --log-events and the OTLP exporter, so it is written when first read (most agents
 * have none of them, and a JSON.stringify per exit was 5-7% of the agent's CPU under a storm,
 * measured side by side).
 */
class ExitRecord implements EventRecord {
  readonly seq: number;
  readonly kind = 'exit';
  readonly execId: string;
  readonly parentExecId = null;
  readonly exit = null;
  readonly time: string;
  readonly comm: string;
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  readonly image: string | null;
  readonly attribution: Attribution;
  readonly workload: Workload | null;
  readonly origin: Origin;
  readonly sessionExecId: string | null;
  readonly uid = null;
  readonly euid = null;
  readonly drift = false;
  readonly failed = false;
  readonly #event: ExitEvent;
  #text: string | null = null;

  constructor(event: ExitEvent) {
    this.seq = event.seq;
    this.execId = event.execId;
    this.time = event.time;
    this.comm = event.comm;
    this.namespace = event.namespace;
    this.pod = event.pod;
    this.container = event.container;
    this.image = event.image;
    this.attribution = event.attribution;
    this.workload = event.workload;
    this.origin = event.origin;
    this.sessionExecId = event.sessionExecId;
    this.#event = event;
  }

  get json(): string {
    this.#text ??= serializeEvent(this.#event);
    return this.#text;
  }

  get bytes(): number {
    return RECORD_BYTES + textBytes(this.json);
  }
}

/** The record of a delivered (enriched, redacted) event. */
export function eventRecord(event: AgentEvent): EventRecord {
  if (event.kind === 'exit') return new ExitRecord(event);
  const json = serializeEvent(event);
  const bytes = RECORD_BYTES + textBytes(json);
  if (event.kind === 'exec') {
    return {
      seq: event.seq,
      kind: event.kind,
      execId: event.execId,
      parentExecId: event.parentExecId,
      json,
      exit: null,
      time: event.time,
      comm: event.comm,
      namespace: event.namespace,
      pod: event.pod,
      container: event.container,
      image: event.image,
      attribution: event.attribution,
      workload: event.workload,
      origin: event.origin,
      sessionExecId: event.sessionExecId,
      uid: event.uid,
      euid: event.euid,
      drift: event.drift,
      failed: event.retval !== 0,
      bytes,
    };
  }
  // A throttle or a gap names no process; a gap no pod either (it names its pods in `pods`).
  const where = event.kind === 'gap' ? null : event;
  return {
    seq: event.seq,
    kind: event.kind,
    execId: null,
    parentExecId: null,
    json,
    exit: null,
    time: event.time,
    comm: where?.comm ?? '',
    namespace: where?.namespace ?? null,
    pod: where?.pod ?? null,
    container: where?.container ?? null,
    image: where?.image ?? null,
    attribution: where?.attribution ?? null,
    workload: where?.workload ?? null,
    origin: null,
    sessionExecId: null,
    uid: null,
    euid: null,
    drift: false,
    failed: false,
    bytes,
  };
}

/** What an exec's `exit` holds: the object, its six values and its time's 30 characters, rounded up. */
export const EXIT_BYTES = 160;

/**
 * The record of an exec once its process has ended: `exit` kept beside its text. Re-serializing
 * the event, or even writing its text again with `exit` in it, cost a copy of every exec's text
 * per exit (two agents side by side through one storm: 0.86 and 0.89 of the CPU without any update);
 * so did writing the exit's own text at once (a JSON.stringify per exit, 2% of the agent's CPU
 * samples under a storm), which readers of the ring's few held records do instead.
 */
export function withExit(record: EventRecord, exit: ExecExit): EventRecord {
  return { ...record, exit, bytes: record.bytes + EXIT_BYTES };
}

/**
 * The event's JSON text as readers get it: with `exit` once known. `exit` is the last field of the
 * exec schema and absent from the text until then, so it goes at its end, where serializeEvent
 * would write it.
 */
export function textOf(record: EventRecord): string {
  return record.exit === null ? record.json : `${record.json.slice(0, -1)},"exit":${JSON.stringify(record.exit)}}`;
}

/** The exec event a record was written from (filters that search filename and argv read them here). */
export const eventOf = (record: EventRecord): ExecEvent => JSON.parse(textOf(record)) as ExecEvent;
