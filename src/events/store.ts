/**
 * The bounded ring of recent events behind GET /api/events and stream replay, kept as records
 * (src/events/record.ts: the JSON text and what the filters read). Bounded twice: by count
 * (--recent-events) and by an estimate of the bytes the records hold, because argv can be large
 * and the count alone would not bound memory.
 */
import type { EventRecord } from './record.js';

/** Default byte budget of the ring: room for 10,000 events of ~6 KiB each. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export interface EventStoreOptions {
  /** Most events kept (--recent-events). */
  maxEvents: number;
  /** Most estimated bytes kept; the newest record is always kept. Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

/** Ring buffer of the most recent records, pushed in seq order, evicting the oldest. */
export class EventStore {
  private readonly ring: (EventRecord | undefined)[];
  private readonly maxBytes: number;
  /** Index of the oldest record. */
  private head = 0;
  private length = 0;
  private byteCount = 0;

  constructor(opts: EventStoreOptions) {
    if (!Number.isInteger(opts.maxEvents) || opts.maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${opts.maxEvents}`);
    }
    this.ring = new Array<EventRecord | undefined>(opts.maxEvents).fill(undefined);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  /** Records held now. */
  get size(): number {
    return this.length;
  }

  /** Estimated bytes held now (EventRecord.bytes summed). */
  get bytes(): number {
    return this.byteCount;
  }

  push(record: EventRecord): void {
    const capacity = this.ring.length;
    if (this.length === capacity) this.evictOldest();
    const slot = (this.head + this.length) % capacity;
    this.ring[slot] = record;
    this.length += 1;
    this.byteCount += record.bytes;
    while (this.byteCount > this.maxBytes && this.length > 1) this.evictOldest();
  }

  /** Up to `limit` matching records, newest first. */
  query(filter: (record: EventRecord) => boolean, limit: number): EventRecord[] {
    const found: EventRecord[] = [];
    for (let i = this.length - 1; i >= 0 && found.length < limit; i -= 1) {
      const record = this.at(i);
      if (filter(record)) found.push(record);
    }
    return found;
  }

  /** Every held matching record with seq greater than `seq`, oldest first (stream replay). */
  after(seq: number, filter: (record: EventRecord) => boolean): EventRecord[] {
    const found: EventRecord[] = [];
    for (let i = this.length - 1; i >= 0; i -= 1) {
      const record = this.at(i);
      if (record.seq <= seq) break;
      if (filter(record)) found.push(record);
    }
    return found.reverse();
  }

  /** The i-th held record, 0 being the oldest. */
  private at(i: number): EventRecord {
    return this.ring[(this.head + i) % this.ring.length] as EventRecord;
  }

  private evictOldest(): void {
    this.byteCount -= (this.ring[this.head] as EventRecord).bytes;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.length -= 1;
  }
}
