/**
 * The merge of every node's newest events into the newest `limit` of the cluster, in bounded
 * memory: each event is offered as it is read off its node's answer and kept only while it is among
 * the newest `limit` so far (a heap whose root is the oldest kept). Each node answers newest
 * first, so once the heap is full a node's event older than the root ends that node's read.
 * Events are kept as their agent's JSON text: kinds this plugin does not know pass through unchanged.
 */

/** One event as an agent sent it: the fields the merge and the table read, and its exact text. */
export interface MergedEvent {
  kind: string;
  time: string;
  node: string;
  seq: number;
  /** The agent's JSON text of the event. */
  json: string;
  /** The parsed event (for the table). */
  event: Record<string, unknown>;
}

/** The event's JSON text as a MergedEvent; `node` is the agent's node when the event lacks one. */
export function mergedOf(json: string, node: string): MergedEvent {
  const event = JSON.parse(json) as Record<string, unknown>;
  return {
    kind: typeof event.kind === 'string' ? event.kind : 'exec',
    time: String(event.time ?? ''),
    node: typeof event.node === 'string' ? event.node : node,
    seq: Number(event.seq ?? 0),
    json,
    event,
  };
}

/** Newest first: later time, then node name, then later seq (a total order, so merges are stable). */
export function newerFirst(a: MergedEvent, b: MergedEvent): number {
  if (a.time !== b.time) return a.time > b.time ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return b.seq - a.seq;
}

/** The newest `limit` events offered so far. */
export class NewestEvents {
  readonly #heap: MergedEvent[] = [];

  constructor(readonly limit: number) {}

  /** Whether `event` would be kept: true unless the set is full and it is older than all kept. */
  wants(event: MergedEvent): boolean {
    return this.#heap.length < this.limit || newerFirst(event, this.#heap[0] as MergedEvent) < 0;
  }

  /** Offers an event; false when it was not kept (and no later event of a newest-first source will be). */
  offer(event: MergedEvent): boolean {
    if (!this.wants(event)) return false;
    const heap = this.#heap;
    if (heap.length < this.limit) {
      heap.push(event);
      this.#up(heap.length - 1);
    } else {
      heap[0] = event;
      this.#down(0);
    }
    return true;
  }

  /** The oldest event kept (the first to go when a newer one comes), or undefined when empty. */
  oldest(): MergedEvent | undefined {
    return this.#heap[0];
  }

  get size(): number {
    return this.#heap.length;
  }

  /** The kept events, newest first. */
  sorted(): MergedEvent[] {
    return [...this.#heap].sort(newerFirst);
  }

  // The root is the oldest kept: "a above b" means a is older than b.
  #older(i: number, j: number): boolean {
    return newerFirst(this.#heap[i] as MergedEvent, this.#heap[j] as MergedEvent) > 0;
  }

  #swap(i: number, j: number): void {
    const heap = this.#heap;
    [heap[i], heap[j]] = [heap[j] as MergedEvent, heap[i] as MergedEvent];
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#older(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#heap.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < n && this.#older(left, top)) top = left;
      if (right < n && this.#older(right, top)) top = right;
      if (top === i) return;
      this.#swap(i, top);
      i = top;
    }
  }
}

/** Characters kept of what lies outside the events: room for `,"lastSeq":` and any seq. */
const OUTSIDE_CHARS = 48;

/**
 * Splits the text of `{"events":[{…},{…}],"lastSeq":N}` as it arrives into the JSON text of each
 * event, without holding more than one event's text: a scanner of strings and braces, for the one
 * shape the agent's GET /api/events writes. The last characters outside the events are kept,
 * for `lastSeq`.
 */
export class EventArraySplitter {
  #depth = 0;
  #inString = false;
  #escaped = false;
  #current = '';
  #outside = '';

  /** The answer's `lastSeq`, once read whole (undefined before, or from an agent that does not send it). */
  get lastSeq(): number | undefined {
    const m = /"lastSeq":(\d+)[,}]/.exec(this.#outside);
    return m === null ? undefined : Number(m[1]);
  }

  /** Feeds a chunk; returns the events completed in it. */
  push(chunk: string): string[] {
    const done: string[] = [];
    let start = this.#depth >= 3 ? 0 : -1;
    for (let i = 0; i < chunk.length; i += 1) {
      const c = chunk.charCodeAt(i);
      // The last few dozen characters: another body (a proxy's page) is not kept whole.
      if (this.#depth <= 1) this.#outside = (this.#outside + chunk[i]).slice(-OUTSIDE_CHARS);
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === 0x5c) this.#escaped = true;
        else if (c === 0x22) this.#inString = false;
      } else if (c === 0x22) {
        this.#inString = true;
      } else if (c === 0x7b || c === 0x5b) {
        this.#depth += 1;
        // Depth 1 is the body, 2 the events array: a `{` opening depth 3 starts an event.
        if (this.#depth === 3 && c === 0x7b) start = i;
      } else if (c === 0x7d || c === 0x5d) {
        this.#depth -= 1;
        if (this.#depth === 2 && c === 0x7d) {
          done.push(this.#current + chunk.slice(start, i + 1));
          this.#current = '';
          start = -1;
        }
      }
    }
    if (start >= 0 && this.#depth >= 3) this.#current += chunk.slice(start);
    return done;
  }
}
