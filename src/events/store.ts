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
  /**
   * The seq of each slot's record, beside the ring: the binary search of update() and replay()
   * reads these numbers instead of a record object per step (update() runs for every exit).
   */
  readonly #seqs: Float64Array;
  private readonly maxBytes: number;
  /** Index of the oldest record. */
  private head = 0;
  private length = 0;
  private byteCount = 0;
  /** The seq of the last record evicted (0 before any). */
  #evictedSeq = 0;

  constructor(opts: EventStoreOptions) {
    if (!Number.isInteger(opts.maxEvents) || opts.maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${opts.maxEvents}`);
    }
    this.ring = new Array<EventRecord | undefined>(opts.maxEvents).fill(undefined);
    this.#seqs = new Float64Array(opts.maxEvents);
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
    this.#seqs[slot] = record.seq;
    this.length += 1;
    this.byteCount += record.bytes;
    while (this.byteCount > this.maxBytes && this.length > 1) this.evictOldest();
  }

  /**
   * Replaces the held record of `seq` by `make(it)` (an exec that gained its exit), keeping its
   * place; false when the ring no longer holds it.
   */
  update(seq: number, make: (record: EventRecord) => EventRecord): boolean {
    const i = this.indexAfter(seq - 1);
    const slot = (this.head + i) % this.ring.length;
    if (i >= this.length || this.#seqs[slot] !== seq) return false;
    const old = this.ring[slot] as EventRecord;
    const next = make(old);
    this.ring[slot] = next;
    this.byteCount += next.bytes - old.bytes;
    while (this.byteCount > this.maxBytes && this.length > 1) this.evictOldest();
    return true;
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

  /**
   * A reader of the held matching records with seq greater than `seq` and at most the newest held
   * now, oldest first (stream replay after Last-Event-ID). It reads the ring as it goes rather than
   * copying: a slow client must not keep alive records the ring has let go of.
   */
  replay(seq: number, filter: (record: EventRecord) => boolean): Replay {
    const newest = this.length === 0 ? seq : this.at(this.length - 1).seq;
    return new Replay(this, Math.max(seq, this.#evictedSeq), newest, filter);
  }

  /** The seq of the last record the ring let go of (0 before any). */
  get evictedSeq(): number {
    return this.#evictedSeq;
  }

  /** @internal Replay: the index of the oldest held record with seq greater than `seq` (size if none). */
  indexAfter(seq: number): number {
    const capacity = this.ring.length;
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#seqs[(this.head + mid) % capacity] as number) > seq) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** @internal Replay: the i-th held record, 0 being the oldest. */
  at(i: number): EventRecord {
    return this.ring[(this.head + i) % this.ring.length] as EventRecord;
  }

  private evictOldest(): void {
    const oldest = this.ring[this.head] as EventRecord;
    this.byteCount -= oldest.bytes;
    this.#evictedSeq = oldest.seq;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.length -= 1;
  }
}

/**
 * Replay of the ring after a seq, read one record at a time from the ring itself. If the ring
 * evicts a record this reader has not reached yet (the client read too slowly), next() says
 * 'evicted' and the stream is cut off like any subscriber that falls behind: it reconnects with
 * Last-Event-ID.
 */
export class Replay {
  #after: number;

  constructor(
    private readonly store: EventStore,
    after: number,
    private readonly until: number,
    private readonly filter: (record: EventRecord) => boolean,
  ) {
    this.#after = after;
  }

  /** The next matching record, undefined when the replay is done, or 'evicted'. */
  next(): EventRecord | 'evicted' | undefined {
    if (this.store.evictedSeq > this.#after) return 'evicted';
    for (let i = this.store.indexAfter(this.#after); i < this.store.size; i += 1) {
      const record = this.store.at(i);
      if (record.seq > this.until) break;
      this.#after = record.seq;
      if (this.filter(record)) return record;
    }
    this.#after = this.until;
    return undefined;
  }
}
