/**
 * Live subscribers of GET /api/events/stream. publish() is called on the capture path, so it
 * must never wait and never let a slow client grow memory: each subscriber has a bounded queue,
 * and one that overflows it is cut off and counted. Frames are Server-Sent Events, built at most
 * once per event however many subscribers receive it, around the JSON text the record holds.
 */
import { textOf, type EventRecord } from './record.js';
import type { Replay } from './store.js';

/**
 * The SSE frame of one event, named by its kind (`exec`, `exit`): its seq is the id, so
 * EventSource resumes with Last-Event-ID.
 */
export function sseFrame(record: EventRecord): string {
  return `id: ${record.seq}\nevent: ${record.kind}\ndata: ${textOf(record)}\n\n`;
}

/** An SSE comment: ignored by clients, keeps proxies and port-forwards from idling out. */
export const HEARTBEAT = ': keep-alive\n\n';

/** Why the hub let go of a subscriber. */
export type CloseReason = 'overflow' | 'shutdown';

/** The transport under a subscriber (an HTTP response in production). */
export interface Sink {
  /** Writes a chunk; false when the transport's buffer is full: the hub waits for drained(). */
  write(chunk: string): boolean;
  /** The hub dropped this subscriber; called at most once, never after unsubscribe(). */
  close(reason: CloseReason): void;
}

/** The handle subscribe() returns to the transport. */
export interface Subscription {
  /** The transport's buffer emptied (the 'drain' event): resume writing. */
  drained(): void;
  /** The client went away. Idempotent. */
  unsubscribe(): void;
}

/** Default bound of the bytes a subscriber may have waiting (EventHubOptions.maxQueueBytes). */
export const DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024;

export interface EventHubOptions {
  /** Most frames a subscriber may have waiting while its transport is full. */
  maxQueue: number;
  /**
   * Most bytes (the records' estimates) a subscriber may have waiting: with 32 KiB argv, maxQueue
   * frames alone could hold ~190 MB per subscriber. Default DEFAULT_QUEUE_BYTES.
   */
  maxQueueBytes?: number;
  /** Called once per subscriber cut off for falling behind. */
  onOverflow: () => void;
}

/** One published event, framed lazily and shared by every subscriber it goes to. */
class Outgoing {
  private text: string | undefined;
  constructor(private readonly record: EventRecord) {}
  get bytes(): number {
    return this.record.bytes;
  }
  get frame(): string {
    this.text ??= sseFrame(this.record);
    return this.text;
  }
}

class Subscriber implements Subscription {
  /** The transport said its buffer is full; write nothing until drained(). */
  private waiting = false;
  private readonly queue: Outgoing[] = [];
  /** Estimated bytes of the queued frames' records. */
  private queuedBytes = 0;

  constructor(
    private readonly hub: EventHub,
    readonly filter: (record: EventRecord) => boolean,
    readonly sink: Sink,
    /** Read from the ring until done, then dropped. */
    private replay: Replay | undefined,
    private readonly maxQueue: number,
    private readonly maxQueueBytes: number,
  ) {}

  /** Takes a live frame; false when the queue would exceed a bound (count or bytes). */
  offer(item: Outgoing): boolean {
    if (this.waiting || this.queue.length > 0 || this.replay !== undefined) {
      if (this.queue.length >= this.maxQueue || this.queuedBytes + item.bytes > this.maxQueueBytes) return false;
      this.queue.push(item);
      this.queuedBytes += item.bytes;
      return true;
    }
    this.waiting = !this.sink.write(item.frame);
    return true;
  }

  heartbeat(): void {
    if (!this.waiting && this.queue.length === 0) this.waiting = !this.sink.write(HEARTBEAT);
  }

  /** Writes replayed events (read from the ring as it goes), then queued frames, until full. */
  flush(): void {
    while (!this.waiting) {
      let frame: string;
      if (this.replay !== undefined) {
        const record = this.replay.next();
        if (record === 'evicted') {
          this.hub.overflowed(this);
          return;
        }
        if (record === undefined) {
          this.replay = undefined;
          continue;
        }
        frame = sseFrame(record);
      } else {
        const item = this.queue.shift();
        if (item === undefined) return;
        this.queuedBytes -= item.bytes;
        frame = item.frame;
      }
      this.waiting = !this.sink.write(frame);
    }
  }

  drained(): void {
    this.waiting = false;
    this.flush();
  }

  unsubscribe(): void {
    this.hub.remove(this);
  }
}

/** Fan-out of published events to live subscribers. */
export class EventHub {
  private readonly subscribers = new Set<Subscriber>();
  #lastSeq = 0;

  constructor(private readonly opts: EventHubOptions) {}

  /** Live subscribers now. */
  get count(): number {
    return this.subscribers.size;
  }

  /** The seq of the last event published (0 before any). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Adds a subscriber. `replay` (EventStore.replay for Last-Event-ID) is written before any live
   * event; it is not counted against the queue bound, being read from the ring as it goes. A
   * subscriber that the ring's evictions overtake during its replay is cut off like one whose
   * queue overflows.
   */
  subscribe(filter: (record: EventRecord) => boolean, sink: Sink, replay?: Replay): Subscription {
    const subscriber = new Subscriber(this, filter, sink, replay, this.opts.maxQueue, this.opts.maxQueueBytes ?? DEFAULT_QUEUE_BYTES);
    this.subscribers.add(subscriber);
    subscriber.flush();
    return subscriber;
  }

  /** Offers the event to every matching subscriber; O(subscribers), never waits. */
  publish(record: EventRecord): void {
    this.#lastSeq = record.seq;
    if (this.subscribers.size === 0) return;
    const item = new Outgoing(record);
    for (const subscriber of this.subscribers) {
      if (!subscriber.filter(record)) continue;
      if (!subscriber.offer(item)) this.drop(subscriber, 'overflow');
    }
  }

  /** Writes an SSE comment to every subscriber that is keeping up. */
  heartbeat(): void {
    for (const subscriber of this.subscribers) subscriber.heartbeat();
  }

  /** Lets go of every subscriber (shutdown): their transports are closed. */
  closeAll(): void {
    for (const subscriber of this.subscribers) this.drop(subscriber, 'shutdown');
  }

  /** @internal Subscriber.flush: the ring evicted what its replay had still to send. */
  overflowed(subscriber: Subscriber): void {
    if (this.subscribers.has(subscriber)) this.drop(subscriber, 'overflow');
  }

  /** @internal Subscriber.unsubscribe. */
  remove(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
  }

  private drop(subscriber: Subscriber, reason: CloseReason): void {
    this.subscribers.delete(subscriber);
    if (reason === 'overflow') this.opts.onOverflow();
    subscriber.sink.close(reason);
  }
}
