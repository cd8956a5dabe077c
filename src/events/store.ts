/**
 * The bounded ring of recent events behind GET /api/events and stream replay. Bounded twice: by
 * count (--recent-events) and by an estimate of the bytes the records hold, because argv can be
 * large and the count alone would not bound memory.
 *
 * Nothing of a held event lives on the JavaScript heap as an object of its own: its JSON text is
 * copied, as UTF-8, into large Buffers (chunks, outside the heap, reused), and the fields the
 * filters read sit in typed arrays indexed by slot. Holding 10,000 texts as strings made every
 * one of them survive the young-generation scavenges and get copied twice, which cost a fifth of
 * the pipeline's CPU; a ring of bytes costs the collector nothing. Records are handed out as
 * views (StoredRecord) that read their text from the chunk when asked.
 */
import type { EventRecord } from './record.js';

/** Default byte budget of the ring: room for 10,000 events of ~6 KiB each. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** Size of the chunks texts are written into; a longer text gets a chunk of its own. */
export const CHUNK_BYTES = 1024 * 1024;

/** Emptied chunks kept for reuse rather than left to the collector. */
const SPARE_CHUNKS = 2;

export interface EventStoreOptions {
  /** Most events kept (--recent-events). */
  maxEvents: number;
  /** Most estimated bytes kept; the newest record is always kept. Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

/** Texts of consecutive records, written in order. */
class Chunk {
  /** Bytes written. */
  used = 0;
  /**
   * The records handed out of the store whose text is still in this chunk: before the chunk is
   * written over, each one still alive reads its text (it may be mid-way through a response).
   */
  #readers: WeakRef<StoredRecord>[] = [];
  /** Length of #readers after its last pruning. */
  #pruned = 0;

  constructor(readonly buf: Buffer) {}

  /** A record leaving the store (query, replay): remembered until it has read its text. */
  handOut(record: StoredRecord): StoredRecord {
    this.#readers.push(new WeakRef(record));
    // An idle ring polled by a page would grow the list without end: drop the records that have
    // read their text or are gone, whenever it has doubled.
    if (this.#readers.length > 2 * this.#pruned + 1024) {
      this.#readers = this.#readers.filter((ref) => ref.deref()?.hasText === false);
      this.#pruned = this.#readers.length;
    }
    return record;
  }

  /** Nothing held is in this chunk: the records handed out read their text, then it is reused. */
  empty(): void {
    for (const ref of this.#readers) void ref.deref()?.json;
    this.#readers = [];
    this.#pruned = 0;
    this.used = 0;
  }
}

/** A held record, as query() and after() give it: the text is read from its chunk on demand. */
class StoredRecord implements EventRecord {
  #chunk: Chunk | null;
  #json: string | undefined;

  constructor(
    readonly seq: number,
    readonly namespace: string | null,
    readonly pod: string | null,
    readonly container: string | null,
    readonly comm: string,
    readonly uid: number,
    readonly failed: boolean,
    readonly timeMs: number,
    readonly filenameAt: number,
    readonly argvAt: number,
    readonly argvEnd: number,
    readonly escaped: boolean,
    readonly bytes: number,
    chunk: Chunk,
    private readonly at: number,
    private readonly length: number,
  ) {
    this.#chunk = chunk;
  }

  /** The text has been read (it no longer needs its chunk). */
  get hasText(): boolean {
    return this.#json !== undefined;
  }

  /** The text as UTF-8: the ring's own bytes while they are still there (use them at once). */
  utf8(): Buffer {
    if (this.#chunk === null) return Buffer.from(this.#json as string);
    return this.#chunk.buf.subarray(this.at, this.at + this.length);
  }

  get json(): string {
    if (this.#json === undefined) {
      this.#json = (this.#chunk as Chunk).buf.toString('utf8', this.at, this.at + this.length);
      this.#chunk = null;
    }
    return this.#json;
  }
}

/**
 * A record's JSON as UTF-8 bytes: for a record of the ring, a view of its bytes there, valid until
 * the ring is next pushed to; for any other record, its text encoded.
 */
export function recordText(record: EventRecord): Buffer {
  return record instanceof StoredRecord ? record.utf8() : Buffer.from(record.json);
}

const FAILED = 1;
const ESCAPED = 2;

/** Ring buffer of the most recent records, pushed in seq order, evicting the oldest. */
export class EventStore {
  readonly #capacity: number;
  readonly #maxBytes: number;
  // One entry per slot.
  readonly #seq: Float64Array;
  readonly #timeMs: Float64Array;
  readonly #uid: Uint32Array;
  readonly #bits: Uint8Array;
  readonly #filenameAt: Uint32Array;
  readonly #argvAt: Uint32Array;
  readonly #argvEnd: Uint32Array;
  readonly #estimate: Float64Array;
  readonly #textAt: Uint32Array;
  readonly #textLength: Uint32Array;
  readonly #chunk: (Chunk | undefined)[];
  readonly #comm: string[];
  // Shared with the pod index.
  readonly #namespace: (string | null)[];
  readonly #pod: (string | null)[];
  readonly #container: (string | null)[];
  /** Chunks holding texts of held records, oldest first; the last one is written to. */
  #chunks: Chunk[] = [];
  readonly #spare: Chunk[] = [];
  /** Slot of the oldest record. */
  #head = 0;
  #length = 0;
  #byteCount = 0;

  constructor(opts: EventStoreOptions) {
    if (!Number.isInteger(opts.maxEvents) || opts.maxEvents < 1) {
      throw new RangeError(`maxEvents must be a positive integer, got ${opts.maxEvents}`);
    }
    const n = opts.maxEvents;
    this.#capacity = n;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#seq = new Float64Array(n);
    this.#timeMs = new Float64Array(n);
    this.#uid = new Uint32Array(n);
    this.#bits = new Uint8Array(n);
    this.#filenameAt = new Uint32Array(n);
    this.#argvAt = new Uint32Array(n);
    this.#argvEnd = new Uint32Array(n);
    this.#estimate = new Float64Array(n);
    this.#textAt = new Uint32Array(n);
    this.#textLength = new Uint32Array(n);
    this.#chunk = new Array<Chunk | undefined>(n).fill(undefined);
    this.#comm = new Array<string>(n).fill('');
    this.#namespace = new Array<string | null>(n).fill(null);
    this.#pod = new Array<string | null>(n).fill(null);
    this.#container = new Array<string | null>(n).fill(null);
  }

  /** Records held now. */
  get size(): number {
    return this.#length;
  }

  /** Estimated bytes held now (EventRecord.bytes summed). */
  get bytes(): number {
    return this.#byteCount;
  }

  /** Bytes of the chunks the texts are in, spare ones included (what the ring costs outside the heap). */
  get chunkBytes(): number {
    let total = 0;
    for (const chunk of this.#chunks) total += chunk.buf.length;
    for (const chunk of this.#spare) total += chunk.buf.length;
    return total;
  }

  push(record: EventRecord): void {
    if (this.#length === this.#capacity) this.#evictOldest();
    const json = record.json;
    const length = Buffer.byteLength(json, 'utf8');
    const chunk = this.#chunkFor(length);
    const at = chunk.used;
    chunk.buf.write(json, at, length, 'utf8');
    chunk.used += length;

    const slot = (this.#head + this.#length) % this.#capacity;
    this.#seq[slot] = record.seq;
    this.#timeMs[slot] = record.timeMs;
    this.#uid[slot] = record.uid;
    this.#bits[slot] = (record.failed ? FAILED : 0) | (record.escaped ? ESCAPED : 0);
    this.#filenameAt[slot] = record.filenameAt;
    this.#argvAt[slot] = record.argvAt;
    this.#argvEnd[slot] = record.argvEnd;
    this.#estimate[slot] = record.bytes;
    this.#textAt[slot] = at;
    this.#textLength[slot] = length;
    this.#chunk[slot] = chunk;
    this.#comm[slot] = record.comm;
    this.#namespace[slot] = record.namespace;
    this.#pod[slot] = record.pod;
    this.#container[slot] = record.container;
    this.#length += 1;
    this.#byteCount += record.bytes;
    while (this.#byteCount > this.#maxBytes && this.#length > 1) this.#evictOldest();
  }

  /** Up to `limit` matching records, newest first. */
  query(filter: (record: EventRecord) => boolean, limit: number): EventRecord[] {
    const found: EventRecord[] = [];
    for (let i = this.#length - 1; i >= 0 && found.length < limit; i -= 1) {
      const slot = this.#slot(i);
      const record = this.#view(slot);
      if (filter(record)) found.push((this.#chunk[slot] as Chunk).handOut(record));
    }
    return found;
  }

  /** Every held matching record with seq greater than `seq`, oldest first (stream replay). */
  after(seq: number, filter: (record: EventRecord) => boolean): EventRecord[] {
    const found: EventRecord[] = [];
    for (let i = this.#length - 1; i >= 0; i -= 1) {
      const slot = this.#slot(i);
      if ((this.#seq[slot] as number) <= seq) break;
      const record = this.#view(slot);
      if (filter(record)) found.push((this.#chunk[slot] as Chunk).handOut(record));
    }
    return found.reverse();
  }

  /** The slot of the i-th held record, 0 being the oldest. */
  #slot(i: number): number {
    return (this.#head + i) % this.#capacity;
  }

  #view(slot: number): StoredRecord {
    const bits = this.#bits[slot] as number;
    return new StoredRecord(
      this.#seq[slot] as number,
      this.#namespace[slot] as string | null,
      this.#pod[slot] as string | null,
      this.#container[slot] as string | null,
      this.#comm[slot] as string,
      this.#uid[slot] as number,
      (bits & FAILED) !== 0,
      this.#timeMs[slot] as number,
      this.#filenameAt[slot] as number,
      this.#argvAt[slot] as number,
      this.#argvEnd[slot] as number,
      (bits & ESCAPED) !== 0,
      this.#estimate[slot] as number,
      this.#chunk[slot] as Chunk,
      this.#textAt[slot] as number,
      this.#textLength[slot] as number,
    );
  }

  /** The chunk the next text of `length` bytes goes into. */
  #chunkFor(length: number): Chunk {
    const last = this.#chunks.at(-1);
    if (last !== undefined && last.used + length <= last.buf.length) return last;
    let chunk: Chunk;
    if (length > CHUNK_BYTES) chunk = new Chunk(Buffer.allocUnsafe(length));
    else chunk = this.#spare.pop() ?? new Chunk(Buffer.allocUnsafe(CHUNK_BYTES));
    this.#chunks.push(chunk);
    return chunk;
  }

  #evictOldest(): void {
    const slot = this.#head;
    this.#byteCount -= this.#estimate[slot] as number;
    this.#chunk[slot] = undefined;
    this.#comm[slot] = '';
    this.#namespace[slot] = null;
    this.#pod[slot] = null;
    this.#container[slot] = null;
    this.#head = (this.#head + 1) % this.#capacity;
    this.#length -= 1;
    // Chunks before the oldest held text hold nothing any more (the written-to one stays).
    const oldest = this.#length === 0 ? this.#chunks.at(-1) : this.#chunk[this.#head];
    while (this.#chunks[0] !== oldest) this.#release(this.#chunks.shift() as Chunk);
  }

  /** A chunk no held record uses: kept for reuse once the views handed out of it have read. */
  #release(chunk: Chunk): void {
    chunk.empty();
    if (chunk.buf.length === CHUNK_BYTES && this.#spare.length < SPARE_CHUNKS) this.#spare.push(chunk);
  }
}
