/**
 * An ExecEvent as the decoder builds it. Its argv usually stays JSON text the decoder wrote
 * straight from the record's bytes: the event record (record.ts) needs exactly that text, and
 * splitting the arguments into strings only to serialize them again cost more than the rest of
 * decoding. The array is made on first access (redaction that changed an argument assigns one,
 * tests read it) and from then on is the truth: the text is dropped, since the caller may change
 * the array.
 *
 * Most often the decoder wrote more: the front text, every field it alone decides (seq through
 * readError, argv included) as the record's JSON begins. That text stands for those fields as
 * decoded; the pipeline changes only argv after decoding (redaction, through the setter, which
 * drops the text) and the cgroup and pod fields, which come after it.
 *
 * Every ExecEvent field other than argv is a plain own property, in the order the JSON has them.
 */
import type { ExecEvent, Workload } from './types.js';

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

  #argv: string[] | undefined;
  /** argv as JSON while #argv has not been made (when there is no front text). */
  #argvJson: string | undefined;
  /** The front text while #argv has not been made. */
  #front: DecodedFront | undefined;
  /** `time` in milliseconds since the epoch, as filter.ts timeMs would parse it. */
  readonly #timeMs: number;

  /** `argv` is the array, its JSON text (an array of strings, exactly), or the front text. */
  constructor(seq: number, time: string, timeMs: number, node: string, argv: string[] | string | DecodedFront) {
    this.seq = seq;
    this.time = time;
    this.node = node;
    this.#timeMs = timeMs;
    if (typeof argv === 'string') this.#argvJson = argv;
    else if (Array.isArray(argv)) this.#argv = argv;
    else this.#front = argv;
  }

  get argv(): string[] {
    if (this.#argv === undefined) {
      this.#argv = JSON.parse(DecodedEvent.argvJson(this) as string) as string[];
      this.#argvJson = undefined;
      this.#front = undefined;
    }
    return this.#argv;
  }

  set argv(argv: string[]) {
    this.#argv = argv;
    this.#argvJson = undefined;
    this.#front = undefined;
  }

  /** The event as a plain object, argv in its place: what JSON.stringify(event) writes. */
  toJSON(): ExecEvent {
    const { seq, time, node, pid, tid, ppid, uid, gid, comm, parentComm, filename, ...rest } = this;
    return { seq, time, node, pid, tid, ppid, uid, gid, comm, parentComm, filename, argv: this.argv, ...rest };
  }

  /** argv's JSON text when the decoder wrote it and nobody has asked for the array since. */
  static argvJson(event: ExecEvent): string | undefined {
    if (!(#front in event)) return undefined;
    const front = event.#front;
    return front === undefined ? event.#argvJson : front.text.slice(front.argvAt, front.argvEnd);
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
