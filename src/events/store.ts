/**
 * The bounded ring of recent events behind GET /api/events and stream replay. Bounded twice:
 * by count (--recent-events) and by an estimate of the bytes the events hold, because argv can
 * be large and the count alone would not bound memory.
 */
import type { ExecEvent } from './types.js';

/** Default byte budget of the ring: room for 10,000 events of ~6 KiB each. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** Object, numbers, booleans and the short strings (time, comm, ids, pod fields). */
const FIXED_BYTES = 640;
/** V8's per-string header plus the array slot, rounded up. */
const STRING_BYTES = 32;

/**
 * A cheap upper-bound-ish estimate of an event's heap footprint: string lengths plus fixed
 * overheads. Summing lengths avoids a JSON.stringify per push.
 */
export function estimateBytes(event: ExecEvent): number {
  let bytes = FIXED_BYTES + event.filename.length + (event.argvBase64?.length ?? 0);
  bytes += event.filenameBase64?.length ?? 0;
  for (const arg of event.argv) bytes += STRING_BYTES + arg.length;
  return bytes;
}

export interface EventStoreOptions {
  /** Most events kept (--recent-events). */
  maxEvents: number;
  /** Most estimated bytes kept; the newest event is always kept. Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

/** Ring buffer of the most recent events, pushed in seq order, evicting the oldest. */
export class EventStore {
  private readonly ring: (ExecEvent | undefined)[];
  private readonly sizes: number[];
  private readonly maxBytes: number;
  /** Index of the oldest event. */
  private head = 0;
  private length = 0;
  private byteCount = 0;

  constructor(opts: EventStoreOptions) {
    if (!Number.isInteger(opts.maxEvents) || opts.maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${opts.maxEvents}`);
    }
    this.ring = new Array<ExecEvent | undefined>(opts.maxEvents).fill(undefined);
    this.sizes = new Array<number>(opts.maxEvents).fill(0);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  /** Events held now. */
  get size(): number {
    return this.length;
  }

  /** Estimated bytes held now (see estimateBytes). */
  get bytes(): number {
    return this.byteCount;
  }

  push(event: ExecEvent): void {
    const capacity = this.ring.length;
    if (this.length === capacity) this.evictOldest();
    const slot = (this.head + this.length) % capacity;
    const size = estimateBytes(event);
    this.ring[slot] = event;
    this.sizes[slot] = size;
    this.length += 1;
    this.byteCount += size;
    while (this.byteCount > this.maxBytes && this.length > 1) this.evictOldest();
  }

  /** Up to `limit` matching events, newest first. */
  query(filter: (event: ExecEvent) => boolean, limit: number): ExecEvent[] {
    const found: ExecEvent[] = [];
    for (let i = this.length - 1; i >= 0 && found.length < limit; i -= 1) {
      const event = this.at(i);
      if (filter(event)) found.push(event);
    }
    return found;
  }

  /** Every held matching event with seq greater than `seq`, oldest first (stream replay). */
  after(seq: number, filter: (event: ExecEvent) => boolean): ExecEvent[] {
    const found: ExecEvent[] = [];
    for (let i = this.length - 1; i >= 0; i -= 1) {
      const event = this.at(i);
      if (event.seq <= seq) break;
      if (filter(event)) found.push(event);
    }
    return found.reverse();
  }

  /** The i-th held event, 0 being the oldest. */
  private at(i: number): ExecEvent {
    return this.ring[(this.head + i) % this.ring.length] as ExecEvent;
  }

  private evictOldest(): void {
    this.byteCount -= this.sizes[this.head] as number;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.length -= 1;
  }
}
