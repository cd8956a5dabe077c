/**
 * The enricher's waiting room: events of containers the pod cache does not know yet, in arrival
 * order, bounded in count and in bytes. A deque (array + head index) so that taking the oldest is
 * O(1) in an exec storm.
 */
import type { KernelEvent } from '../events/schema.js';
import type { CgroupIds } from './cgroup.js';

/** One waiting event. */
export interface PendingEntry {
  event: KernelEvent;
  ids: CgroupIds;
  /** When it stops waiting (clock milliseconds). */
  deadline: number;
  bytes: number;
}

/** Rough heap cost of an event: its strings dominate. */
export function eventBytes(event: KernelEvent): number {
  if (event.kind !== 'exec') return 512;
  let bytes = 512 + event.filename.length * 2 + (event.argvBase64?.length ?? 0) + (event.filenameBase64?.length ?? 0);
  for (const arg of event.argv) bytes += 16 + arg.length * 2;
  return bytes;
}

/** FIFO of pending events with a per-container count, for ordering decisions. */
export class PendingQueue {
  #items: (PendingEntry | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  readonly #perContainer = new Map<string, number>();

  get length(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The oldest entry, or undefined when empty. */
  peek(): PendingEntry | undefined {
    return this.#items[this.#head];
  }

  push(entry: PendingEntry): void {
    this.#items.push(entry);
    this.#bytes += entry.bytes;
    const id = entry.ids.containerId;
    this.#perContainer.set(id, (this.#perContainer.get(id) ?? 0) + 1);
  }

  /** Removes and returns the oldest entry. */
  shift(): PendingEntry | undefined {
    const entry = this.#items[this.#head];
    if (!entry) return undefined;
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#forget(entry);
    return entry;
  }

  /** Whether events of this container are waiting (a newer one must not overtake them). */
  has(containerId: string): boolean {
    return this.#perContainer.has(containerId);
  }

  /**
   * Removes, in order, every entry for which `take` returns true; the others keep their order.
   * O(length): used when the pod cache changed, not per event.
   */
  extract(take: (entry: PendingEntry) => boolean): PendingEntry[] {
    const taken: PendingEntry[] = [];
    const kept: PendingEntry[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const entry = this.#items[i] as PendingEntry;
      if (take(entry)) {
        taken.push(entry);
        this.#forget(entry);
      } else {
        kept.push(entry);
      }
    }
    this.#items = kept;
    this.#head = 0;
    return taken;
  }

  #forget(entry: PendingEntry): void {
    this.#bytes -= entry.bytes;
    const id = entry.ids.containerId;
    const left = (this.#perContainer.get(id) as number) - 1;
    if (left === 0) this.#perContainer.delete(id);
    else this.#perContainer.set(id, left);
  }
}
