/**
 * An ExecEvent as the decoder builds it. When every text of the record is plain ASCII the decoder
 * writes the event's JSON from `{` through `"readError":…` (argv included) straight from the
 * bytes: the front text. The event record (record.ts) begins with exactly that text, and
 * splitting the arguments into strings only to serialize them again cost more than the rest of
 * decoding. The array is made on first access (redaction that changed an argument assigns one,
 * tests read it) and from then on is the truth: the text is dropped, since the caller may change
 * the array. The text stands for the fields as decoded; the pipeline changes only argv after
 * decoding and the cgroup and pod fields, which come after it.
 *
 * Every ExecEvent field other than argv is a plain own property, in the order the JSON has them.
 */
import type { ExecEvent, Workload } from './schema.js';

/** The JSON of an event from `{` through `"readError":…`, and where filename and argv lie in it. */
export interface DecodedFront {
  readonly text: string;
  /** Just after the filename's opening quote. */
  readonly filenameAt: number;
  /** argv's `[`. */
  readonly argvAt: number;
  /** Just after argv's `]`. */
  readonly argvEnd: number;
}

export class DecodedEvent implements ExecEvent {
  seq: number;
  time: string;
  node: string;
  pid = 0;
  tid = 0;
  ppid = 0;
  uid = 0;
  gid = 0;
  comm = '';
  parentComm = '';
  filename = '';
  argc = 0;
  argvTruncated = false;
  filenameTruncated = false;
  retval = 0;
  fileless = false;
  execveat = false;
  readError = false;
  cgroupId = '';
  cgroup = '';
  cgroupParent = '';
  cgroupTruncated = false;
  containerId: string | null = null;
  namespace: string | null = null;
  pod: string | null = null;
  podUid: string | null = null;
  container: string | null = null;
  workload: Workload | null = null;
  // Set only when the bytes were not valid UTF-8 (no own property otherwise, as the type says).
  declare argvBase64?: string;
  declare filenameBase64?: string;

  #argv: string[] = [];
  /** The front text while the array has not been made. */
  #front: DecodedFront | undefined;
  /** `time` in milliseconds since the epoch, as filter.ts timeMs would parse it. */
  readonly #timeMs: number;

  /** argv is given afterwards: the array (the setter) or the front text (keepFront). */
  constructor(seq: number, time: string, timeMs: number, node: string) {
    this.seq = seq;
    this.time = time;
    this.node = node;
    this.#timeMs = timeMs;
  }

  get argv(): string[] {
    const front = this.#front;
    if (front !== undefined) {
      this.#argv = JSON.parse(front.text.slice(front.argvAt, front.argvEnd)) as string[];
      this.#front = undefined;
    }
    return this.#argv;
  }

  set argv(argv: string[]) {
    this.#argv = argv;
    this.#front = undefined;
  }

  /** The event as a plain object, argv in its place: what JSON.stringify(event) writes. */
  toJSON(): ExecEvent {
    const { seq, time, node, pid, tid, ppid, uid, gid, comm, parentComm, filename, ...rest } = this;
    return { seq, time, node, pid, tid, ppid, uid, gid, comm, parentComm, filename, argv: this.argv, ...rest };
  }

  /** Gives the event the decoder's front text: until the array is asked for, argv is its JSON there. */
  static keepFront(event: DecodedEvent, front: DecodedFront): void {
    event.#front = front;
  }

  /** argv's JSON text when the decoder wrote it and nobody has asked for the array since. */
  static argvJson(event: ExecEvent): string | undefined {
    const front = DecodedEvent.front(event);
    return front === undefined ? undefined : front.text.slice(front.argvAt, front.argvEnd);
  }

  /** The front text when the decoder wrote it and nobody has asked for the array since. */
  static front(event: ExecEvent): DecodedFront | undefined {
    return #front in event ? event.#front : undefined;
  }

  /** The event time in epoch milliseconds when the decoder computed it. */
  static timeMs(event: ExecEvent): number | undefined {
    return #timeMs in event ? event.#timeMs : undefined;
  }
}
